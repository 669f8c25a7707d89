//! `poolrank featurize` end to end: order and determinism across threads and chunks, `.smi` and
//! CSV inputs, bad molecules, duplicate ids, FPS read back bit for bit, SMILES pools in `select`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use poolrank::data::Pool as _;
use poolrank::data::{read_fps_type, Features, Tile};
use poolrank::pool::FilePool;

const SCORES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/enamine10k/enamine10k_morgan2_2048.scores.csv.gz"
);
const COUNTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/enamine10k/enamine10k_morgan2_2048.counts.npz"
);

/// The first `n` Enamine 10k molecules: `(id, smiles, score)`.
fn molecules(n: usize) -> Vec<(String, String, String)> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(SCORES).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .take(n)
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].to_string(), r[2].to_string())
        })
        .collect()
}

fn poolrank(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_poolrank"))
        .args(args)
        .output()
        .expect("run poolrank")
}

fn ok(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "poolrank failed: {err}");
    err
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every row of a pool, with its ids.
fn read_pool(spec: &FilePool) -> Tile {
    let mut reader = spec.open().unwrap();
    let mut tile = Tile::new(reader.kind());
    assert!(reader.read_tile(1 << 20, &mut tile).unwrap());
    tile
}

/// A `.smi` of the first `n` molecules (with a header, a comment and an empty line).
fn write_smi(dir: &Path, n: usize) -> PathBuf {
    let p = dir.join("lib.smi");
    let mut text = String::from("SMILES id\n# Enamine 10k\n\n");
    for (id, smiles, _) in molecules(n) {
        text.push_str(&format!("{smiles}\t{id}\n"));
    }
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn threads_chunks_and_layouts_give_the_same_rows_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let n = 300;
    let smi = write_smi(dir.path(), n);
    // The same molecules as gzipped CSV, columns in another order.
    let csv = dir.path().join("lib.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&csv).unwrap(),
        flate2::Compression::default(),
    );
    writeln!(gz, "score,SMILES,id").unwrap();
    for (id, smiles, score) in molecules(n) {
        writeln!(gz, "{score},{smiles},{id}").unwrap();
    }
    gz.finish().unwrap();
    // The .smi as bzip2, and Enamine REAL's layout as zstd: a TSV `.cxsmiles` with `smiles`
    // and `idnumber` columns, some SMILES with a CXSMILES extension.
    let bz = dir.path().join("lib.smi.bz2");
    let mut e = bzip2::write::BzEncoder::new(
        std::fs::File::create(&bz).unwrap(),
        bzip2::Compression::default(),
    );
    e.write_all(&std::fs::read(&smi).unwrap()).unwrap();
    e.finish().unwrap();
    let cx = dir.path().join("lib.cxsmiles.zst");
    let mut z = zstd::Encoder::new(std::fs::File::create(&cx).unwrap(), 3).unwrap();
    writeln!(z, "smiles\tidnumber\treagent1\tMW").unwrap();
    for (k, (id, smiles, _)) in molecules(n).into_iter().enumerate() {
        let ext = if k % 3 == 0 { " |&1:1|" } else { "" };
        writeln!(z, "{smiles}{ext}\t{id}\tEN300-{k}\t{}.5", 200 + k).unwrap();
    }
    z.finish().unwrap();

    let mut outputs = Vec::new();
    for (input, threads, chunk) in [
        (&smi, "1", "1000"),
        (&smi, "2", "7"),
        (&csv, "2", "64"),
        (&csv, "1", "5"),
        (&bz, "2", "64"),
        (&cx, "2", "33"),
    ] {
        let out = dir.path().join(format!("o{}.npz", outputs.len()));
        let err = ok(&poolrank(&[
            "featurize",
            "--smiles",
            s(input),
            "--threads",
            threads,
            "--chunk",
            chunk,
            "--quiet",
            "--out",
            s(&out),
        ]));
        assert!(err.contains(&format!("featurized {n} molecules")), "{err}");
        let ids = std::fs::read(dir.path().join(format!("o{}.ids.txt", outputs.len()))).unwrap();
        outputs.push((std::fs::read(&out).unwrap(), ids, out));
    }
    for o in &outputs[1..] {
        assert!(o.0 == outputs[0].0, "{} differs from o0.npz", o.2.display());
        assert!(o.1 == outputs[0].1);
    }
    let want_ids: Vec<String> = molecules(n).into_iter().map(|m| m.0).collect();
    assert_eq!(
        String::from_utf8(outputs[0].1.clone()).unwrap(),
        want_ids.join("\n") + "\n"
    );
    // As pools (featurized on the fly): the compressed files by their inner name.
    let plain = read_pool(&FilePool::new(&smi));
    for p in [&bz, &cx] {
        let spec = FilePool::new(p);
        assert_eq!(
            spec.resolve_format().unwrap(),
            if p == &cx {
                poolrank::data::PoolFormat::SmilesCsv
            } else {
                poolrank::data::PoolFormat::Smiles
            }
        );
        let got = read_pool(&spec);
        assert_eq!((&got.features, &got.ids), (&plain.features, &plain.ids));
    }
    // The rows equal the shipped RDKit counts.
    let got = read_pool(&FilePool::new(&outputs[0].2)).features;
    let want = read_pool(&FilePool::new(COUNTS))
        .features
        .select_rows(&(0..n).collect::<Vec<_>>());
    assert_eq!(got, want);
}

#[test]
fn bad_molecules_stop_the_run_or_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let smi = dir.path().join("bad.smi");
    std::fs::write(
        &smi,
        "CCO a\n# comment\nC1CC b\n\nc1ccccc1 c\nC(C)(C)(C)(C)C d\nCCN e\n",
    )
    .unwrap();
    let out = dir.path().join("bad.npz");
    let res = poolrank(&["featurize", "--smiles", s(&smi), "--out", s(&out)]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success());
    assert!(
        err.contains("bad.smi:3:") && err.contains("\"b\"") && err.contains("C1CC"),
        "{err}"
    );
    assert!(err.contains("--skip-invalid"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "only the input remains: {left:?}");

    let rejects = dir.path().join("rejected.tsv");
    let err = ok(&poolrank(&[
        "featurize",
        "--smiles",
        s(&smi),
        "--skip-invalid",
        s(&rejects),
        "--out",
        s(&out),
    ]));
    assert!(err.contains("featurized 3 molecules"), "{err}");
    assert!(err.contains("left out 2 invalid"), "{err}");
    let text = std::fs::read_to_string(&rejects).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], "line\tid\tsmiles\treason");
    assert!(lines[1].starts_with("3\tb\tC1CC\t"), "{text}");
    assert!(
        lines[2].starts_with("6\td\tC(C)(C)(C)(C)C\t") && lines[2].contains("Valence"),
        "{text}"
    );
    let ids = std::fs::read_to_string(dir.path().join("bad.ids.txt")).unwrap();
    assert_eq!(ids, "a\nc\ne\n");
    assert_eq!(read_pool(&FilePool::new(&out)).len(), 3);
}

#[test]
fn duplicate_ids_are_an_error_naming_both_lines() {
    let dir = tempfile::tempdir().unwrap();
    let smi = dir.path().join("dup.smi");
    std::fs::write(&smi, "CCO a\nCCN b\nCCC c\nCCCl b\n").unwrap();
    let out = dir.path().join("dup.fps");
    let res = poolrank(&["featurize", "--smiles", s(&smi), "--out", s(&out)]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success());
    assert!(
        err.contains("duplicate id \"b\"") && err.contains("lines 2 and 4"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn fps_reads_back_bit_for_bit_and_select_takes_smiles_pools() {
    let dir = tempfile::tempdir().unwrap();
    let n = 400;
    let smi = write_smi(dir.path(), n);
    let (fps, npz) = (dir.path().join("lib.fps"), dir.path().join("lib.npz"));
    for out in [&fps, &npz] {
        ok(&poolrank(&[
            "featurize",
            "--smiles",
            s(&smi),
            "--quiet",
            "--out",
            s(out),
        ]));
    }
    // FPS bits = counts > 0, through the reader `select` uses.
    let bits = read_pool(&FilePool::new(&fps));
    let counts = read_pool(&FilePool::new(&npz));
    let Features::Bits { nbits: 2048, .. } = &bits.features else {
        panic!(
            "expected 2048-bit fingerprints, got {}",
            bits.features.kind()
        );
    };
    for r in 0..n {
        let mut want = [0u64; 32];
        for &i in counts.features.counts_row(r).unwrap().0 {
            want[i as usize / 64] |= 1 << (i % 64);
        }
        assert_eq!(bits.features.bits_row(r).unwrap(), want, "row {r}");
    }
    let want_ids: Vec<String> = molecules(n).into_iter().map(|m| m.0).collect();
    assert_eq!(bits.ids, want_ids);
    let ty = read_fps_type(&fps).unwrap().unwrap();
    assert!(
        ty.contains("radius=2 fpSize=2048 values=bits") && ty.contains("chematic-fp/1.2.1"),
        "{ty}"
    );
    let prov = FilePool::new(&npz).provenance().unwrap().unwrap();
    assert!(prov.contains("values=counts"), "{prov}");

    // select on the SMILES pool (featurized on the fly) = select on the featurized .npz.
    let labels = dir.path().join("labels.csv");
    let mut text = String::from("id,score\n");
    for (id, _, score) in molecules(n).iter().step_by(8) {
        text.push_str(&format!("{id},{score}\n"));
    }
    std::fs::write(&labels, text).unwrap();
    let ids = dir.path().join("lib.ids.txt");
    let select = |pool: &[&str], out: &Path| {
        let mut args = vec!["select"];
        args.extend_from_slice(pool);
        args.extend_from_slice(&[
            "--labels",
            s(&labels),
            "--minimize",
            "--batch",
            "10",
            "--noise",
            "0.1",
            "--signal-var",
            "1",
            "--backend",
            "cpu",
            "--quiet",
            "--out",
            s(out),
        ]);
        ok(&poolrank(&args))
    };
    let (a, b, c) = (
        dir.path().join("a.csv"),
        dir.path().join("b.csv"),
        dir.path().join("c.csv"),
    );
    let err = select(&["--pool", s(&smi)], &a);
    assert!(err.contains("on the fly"), "{err}");
    assert!(!err.contains("warning"), "{err}");
    select(&["--pool", s(&npz), "--ids", s(&ids)], &b);
    assert_eq!(
        std::fs::read_to_string(&a).unwrap(),
        std::fs::read_to_string(&b).unwrap()
    );
    assert_eq!(std::fs::read_to_string(&a).unwrap().lines().count(), 11);
    select(&["--pool", s(&fps)], &c);
    assert_eq!(std::fs::read_to_string(&c).unwrap().lines().count(), 11);
}

#[test]
fn non_default_settings_are_recorded_and_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let smi = write_smi(dir.path(), 60);
    let fps = dir.path().join("r3.fps.gz");
    ok(&poolrank(&[
        "featurize",
        "--smiles",
        s(&smi),
        "--radius",
        "3",
        "--bits",
        "1024",
        "--quiet",
        "--out",
        s(&fps),
    ]));
    let ty = read_fps_type(&fps).unwrap().unwrap();
    assert!(ty.contains("radius=3 fpSize=1024 values=bits"), "{ty}");
    assert_eq!(read_pool(&FilePool::new(&fps)).len(), 60);
    let labels = dir.path().join("labels.csv");
    let mut text = String::from("id,score\n");
    for (id, _, score) in molecules(60).iter().step_by(4) {
        text.push_str(&format!("{id},{score}\n"));
    }
    std::fs::write(&labels, text).unwrap();
    let out = dir.path().join("batch.csv");
    let err = ok(&poolrank(&[
        "select",
        "--pool",
        s(&fps),
        "--labels",
        s(&labels),
        "--batch",
        "5",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        s(&out),
    ]));
    assert!(
        err.contains("warning") && err.contains("Morgan radius 3, 1024 bits"),
        "{err}"
    );
    // Settings chematic-fp has not verified against RDKit are refused up front.
    let res = poolrank(&[
        "featurize",
        "--smiles",
        s(&smi),
        "--radius",
        "4",
        "--out",
        s(&fps),
    ]);
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("radius 0 to 3"));
    let res = poolrank(&[
        "featurize",
        "--smiles",
        s(&smi),
        "--counts",
        "--out",
        s(&fps),
    ]);
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("FPS files hold bits"));
}
