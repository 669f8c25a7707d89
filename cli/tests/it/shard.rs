//! A pool scored in shards (`shard-list`, `score-shard`, `merge`) gives the batch `select`
//! picks on the whole pool, byte for byte, for every acquisition, with pending candidates,
//! tasks of several shards, array files without ids, any thread count and tile size, the
//! index from a job array's variable, and GPU and CPU workers mixed; and the merge refuses a
//! missing, duplicated or foreign part, a changed shard, a stale list and a damaged part, by
//! name, leaving no output.

use crate::common::{random_bits, random_dense, write_dense_npy, write_fps, write_labels, Rng};

use std::path::PathBuf;
use std::process::{Command, Output};

use poolrank::data::Features;

/// Shard sizes of the 3,000-row pools: uneven, one of a single row, none a multiple of a chunk.
const SIZES: [usize; 8] = [137, 500, 1, 800, 62, 700, 400, 400];

fn poolrank(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_poolrank"));
    cmd.args(args);
    for var in [
        "SLURM_ARRAY_TASK_ID",
        "JOB_COMPLETION_INDEX",
        "AWS_BATCH_JOB_ARRAY_INDEX",
        "POOLRANK_ALLOW_SOFTWARE_GPU",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().unwrap()
}

fn ok(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "poolrank failed: {err}");
    err
}

/// A failure whose message holds every one of `expect`, without a panic.
fn fails(o: &Output, expect: &[&str]) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "expected a failure; stderr: {err}");
    for e in expect {
        assert!(err.contains(e), "stderr lacks {e:?}: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// The `(score, row)` of a part's rows, best first.
fn part_rows(path: &str) -> Vec<(f32, usize)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let mut x = l.split('\t');
            (
                x.next().unwrap().parse().unwrap(),
                x.next().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn p(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// 3,000 random 256-bit fingerprints with ids `m0`…: `full.fps` and the shards
    /// `s0.fps`…`s7.fps`; labels on every 37th row; `m.model` fitted to them; the list.
    fn fps() -> Self {
        let f = Fixture {
            dir: tempfile::tempdir().unwrap(),
        };
        let mut rng = Rng(7);
        let x = random_bits(&mut rng, 3000, 256, 0.12);
        let ids: Vec<String> = (0..3000).map(|i| format!("m{i}")).collect();
        write_fps(&f.path("full.fps"), &x, &ids);
        let mut start = 0;
        for (i, n) in SIZES.iter().enumerate() {
            let rows: Vec<usize> = (start..start + n).collect();
            write_fps(
                &f.path(&format!("s{i}.fps")),
                &x.select_rows(&rows),
                &ids[start..start + n],
            );
            start += n;
        }
        let labels: Vec<(String, f64)> = (0..3000)
            .step_by(37)
            .map(|i| (ids[i].clone(), (i as f64 * 0.37).sin() + rng.uniform()))
            .collect();
        write_labels(&f.path("labels.csv"), &labels);
        f.fit("m.model", "labels.csv");
        let shards: Vec<String> = (0..8).map(|i| f.p(&format!("s{i}.fps"))).collect();
        let mut args = vec!["shard-list", "--out", &*f.p("list.tsv")]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        args.extend(shards);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(&poolrank(&args, &[]));
        f
    }

    fn fit(&self, model: &str, labels: &str) {
        ok(&poolrank(
            &[
                "fit",
                "--pool",
                &self.p("full.fps"),
                "--labels",
                &self.p(labels),
                "--quiet",
                "--save-model",
                &self.p(model),
            ],
            &[],
        ));
    }

    /// `select` with the model on the whole pool: the batch file's text.
    fn one_process(&self, pool: &str, extra: &[&str]) -> String {
        let (out, model) = (self.p("one.csv"), self.p("m.model"));
        let mut args = vec![
            "select", "--pool", pool, "--model", &model, "--quiet", "--out", &out,
        ];
        args.extend_from_slice(extra);
        ok(&poolrank(&args, &[]));
        std::fs::read_to_string(out).unwrap()
    }

    /// `score-shard` for task `index` of the list (`None`: from the environment), writing
    /// `part-INDEX.part` in `folder`.
    fn score(
        &self,
        folder: &str,
        index: Option<usize>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        std::fs::create_dir_all(self.path(folder)).unwrap();
        let index = index.map(|i| i.to_string());
        let out = self.p(&format!("{folder}/part-{{index}}.part"));
        let (model, list) = (self.p("m.model"), self.p("list.tsv"));
        let mut args = vec![
            "score-shard",
            "--model",
            &model,
            "--shard-list",
            &list,
            "--quiet",
            "--out",
            &out,
        ];
        if let Some(index) = &index {
            args.extend_from_slice(&["--index", index]);
        }
        args.extend_from_slice(extra);
        poolrank(&args, env)
    }

    /// `merge` of every part in `folder`: the batch file's text.
    fn merge(&self, folder: &str, k: usize, extra: &[&str]) -> Output {
        let k = k.to_string();
        let parts = self.p(&format!("{folder}/part-*.part"));
        let out = self.p(&format!("{folder}/batch.csv"));
        let mut args = vec!["merge", "--parts", &parts, "--k", &k, "--out", &out];
        args.extend_from_slice(extra);
        poolrank(&args, &[])
    }

    fn batch(&self, folder: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{folder}/batch.csv"))).unwrap()
    }
}

#[test]
fn sharded_batch_is_the_one_process_batch_for_every_acquisition() {
    let f = Fixture::fps();
    let full = f.p("full.fps");
    for acq in [
        "ucb",
        "thompson-marginal",
        "random",
        "greedy",
        "ei",
        "pi",
        "variance",
    ] {
        let flags = ["--acq", acq, "--seed", "11", "--round", "2"];
        let want = f.one_process(&full, &[&flags[..], &["--batch", "40"]].concat());
        assert_eq!(want.lines().count(), 41, "{want}");
        for i in 0..8 {
            // Threads and tile sizes differ from task to task: the part does not depend on them.
            let threads = ["1", "2"][i % 2];
            let tile = ["65536", "100", "7"][i % 3];
            ok(&f.score(
                acq,
                Some(i),
                &[
                    &flags[..],
                    &["--k", "40", "--threads", threads, "--tile", tile],
                ]
                .concat(),
                &[],
            ));
        }
        let err = ok(&f.merge(acq, 40, &["--shard-list", &f.p("list.tsv")]));
        assert!(err.contains("merged 8 part(s) (3000 rows"), "{err}");
        assert_eq!(f.batch(acq), want, "{acq}: the merged batch differs");
    }
}

#[test]
fn pending_ids_tasks_of_several_shards_and_a_smaller_merge() {
    let f = Fixture::fps();
    // Pending ids in three shards, one of them also labeled (it is just labeled).
    std::fs::write(f.path("pending.txt"), "m5\nm700\nm0\nm2999\nm138\n").unwrap();
    let flags = ["--acq", "ucb", "--pending", &*f.p("pending.txt")];
    let want = f.one_process(&f.p("full.fps"), &[&flags[..], &["--batch", "25"]].concat());
    for i in 0..3 {
        ok(&f.score(
            "three",
            Some(i),
            &[&flags[..], &["--k", "60", "--per-task", "3"]].concat(),
            &[],
        ));
    }
    let summary = f.p("three/summary.json");
    ok(&f.merge("three", 25, &["--threads", "1"]));
    assert_eq!(f.batch("three"), want);
    ok(&f.merge("three", 25, &["--summary", &summary, "--threads", "2"]));
    assert_eq!(f.batch("three"), want);
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["parts"], 3);
    assert_eq!(s["tasks"], 3);
    assert_eq!(s["rows"], 3000);
    assert_eq!(s["pending"], 4);
    assert_eq!(s["labeled"], 82);
    assert_eq!(s["candidates"], 3000 - 82 - 4);

    // A pending id that no shard holds: the merge says so, as select refuses it.
    std::fs::write(f.path("pending2.txt"), "m5\nnot-in-the-pool\n").unwrap();
    let flags = [
        "--acq",
        "ucb",
        "--pending",
        &*f.p("pending2.txt"),
        "--k",
        "5",
    ];
    for i in 0..8 {
        ok(&f.score("lost", Some(i), &flags, &[]));
    }
    fails(
        &f.merge("lost", 5, &[]),
        &["--pending", "found 1 of the 2 pending ids", "in no shard"],
    );
}

/// A task scored after others with their k-th best as a floor keeps (and scores) less, and the
/// batch is the same; a floor the batch does not reach is refused by the merge.
#[test]
fn a_floor_from_earlier_parts_changes_nothing_but_the_work() {
    let f = Fixture::fps();
    let want = f.one_process(&f.p("full.fps"), &["--acq", "ucb", "--batch", "30"]);
    for i in 0..8 {
        ok(&f.score("plain", Some(i), &["--k", "30"], &[]));
    }
    // The 30th best (score, row) of the first four parts.
    let mut best: Vec<(f32, usize)> = (0..4)
        .flat_map(|i| part_rows(&f.p(&format!("plain/part-{i}.part"))))
        .collect();
    best.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let floor = format!("{}:{}", best[29].0, best[29].1);
    for i in 0..8 {
        let extra: &[&str] = if i < 4 { &[] } else { &["--floor", &floor] };
        ok(&f.score("floored", Some(i), &[&["--k", "30"], extra].concat(), &[]));
    }
    ok(&f.merge("floored", 30, &[]));
    assert_eq!(f.batch("floored"), want);
    let meta = |folder: &str, i: usize| -> serde_json::Value {
        let text = std::fs::read_to_string(f.path(&format!("{folder}/part-{i}.part"))).unwrap();
        serde_json::from_str(text.lines().nth(1).unwrap().strip_prefix("#meta ").unwrap()).unwrap()
    };
    let (mut plain, mut floored) = (0, 0);
    for i in 4..8 {
        let (p, q) = (meta("plain", i), meta("floored", i));
        assert!(q["summary"]["kept"].as_u64() <= p["summary"]["kept"].as_u64());
        plain += p["summary"]["stages"]["variance"].as_u64().unwrap();
        floored += q["summary"]["stages"]["variance"].as_u64().unwrap();
        assert_eq!(q["floor"]["index"], best[29].1);
    }
    assert!(
        floored < plain,
        "the floor saved no variance: {floored} against {plain}"
    );

    // A floor above the batch's last pick: the task may have left out what the batch needs.
    let high = format!("{}:{}", best[0].0, best[0].1);
    ok(&f.score("floored", Some(5), &["--k", "30", "--floor", &high], &[]));
    fails(
        &f.merge("floored", 30, &[]),
        &["part-5.part", "floor", "does not reach"],
    );
    fails(
        &f.score("floored", Some(5), &["--k", "30", "--floor", "x:1"], &[]),
        &["--floor", "SCORE:ROW"],
    );
}

#[test]
fn diverse_batches_and_a_similarity_cap_pick_from_the_union_shortlist() {
    let f = Fixture::fps();
    std::fs::write(f.path("pending.txt"), "m5\nm700\nm2999\nm138\n").unwrap();
    let (pending, model) = (f.p("pending.txt"), f.p("m.model"));
    let cases: [(&str, &[&str]); 6] = [
        ("diverse", &["--batch-mode", "diverse", "--acq", "ucb"]),
        ("cap", &["--max-sim", "0.4", "--acq", "thompson-marginal"]),
        // The joint acquisitions with a shortlist given, which select does not grow.
        ("joint", &["--acq", "thompson", "--shortlist", "200"]),
        (
            "joint-cap",
            &[
                "--acq",
                "thompson",
                "--shortlist",
                "200",
                "--max-sim",
                "0.4",
            ],
        ),
        (
            "qpo",
            &["--acq", "qpo", "--shortlist", "200", "--samples", "700"],
        ),
        (
            "both",
            &[
                "--batch-mode",
                "diverse",
                "--max-sim",
                "0.5",
                "--shortlist",
                "90",
                "--acq",
                "ei",
            ],
        ),
    ];
    for (name, flags) in cases {
        let flags = [flags, &["--pending", &pending]].concat();
        let want = f.one_process(&f.p("full.fps"), &[&flags[..], &["--batch", "15"]].concat());
        assert_eq!(want.lines().count(), 16, "{want}");
        for i in 0..8 {
            ok(&f.score(name, Some(i), &[&flags[..], &["--k", "15"]].concat(), &[]));
        }
        ok(&f.merge(name, 15, &["--model", &model]));
        assert_eq!(f.batch(name), want, "{name}: the merged batch differs");
    }
    // The shortlist's features are in the parts, the policy needs the model and this batch.
    fails(&f.merge("diverse", 15, &[]), &["--model", "shortlist"]);
    fails(
        &f.merge("diverse", 10, &["--model", &model]),
        &["shortlist of a batch of 15", "--k 15"],
    );
}

/// `merge --out-part` of some parts gives a part that merges with the others to the batch of
/// one merge, in any grouping and in stages (a tree), with pending candidates, a shortlist
/// and a floor carried through; a task in two parts, a group left out and a floor the batch
/// does not reach are refused by name.
#[test]
fn merges_in_stages_in_any_grouping_give_the_one_merge_batch() {
    let f = Fixture::fps();
    std::fs::write(f.path("pending.txt"), "m5\nm700\nm2999\nm138\n").unwrap();
    let (pending, model, list) = (f.p("pending.txt"), f.p("m.model"), f.p("list.tsv"));
    let part = |folder: &str, i: usize| f.p(&format!("{folder}/part-{i}.part"));
    // Merges `inputs` (paths) to the part `out` in `folder`.
    let group = |folder: &str, inputs: &[String], out: &str, k: usize| -> Output {
        let (k, out) = (k.to_string(), f.p(&format!("{folder}/{out}")));
        let mut args = vec!["merge", "--k", &k, "--out-part", &out, "--parts"];
        args.extend(inputs.iter().map(String::as_str));
        poolrank(&args, &[])
    };
    // Merges `inputs` to the batch `staged.csv` in `folder`.
    let staged = |folder: &str, inputs: &[String], k: usize, extra: &[&str]| -> Output {
        let (k, out) = (k.to_string(), f.p(&format!("{folder}/staged.csv")));
        let mut args = vec!["merge", "--k", &k, "--out", &out];
        args.extend_from_slice(extra);
        args.push("--parts");
        args.extend(inputs.iter().map(String::as_str));
        poolrank(&args, &[])
    };
    let batch_of = |folder: &str, inputs: &[String], k: usize, extra: &[&str]| -> String {
        ok(&staged(folder, inputs, k, extra));
        std::fs::read_to_string(f.path(&format!("{folder}/staged.csv"))).unwrap()
    };
    let cases: [(&str, &[&str]); 2] = [
        ("ucb", &["--acq", "ucb", "--seed", "4"]),
        (
            "diverse",
            &["--batch-mode", "diverse", "--acq", "thompson-marginal"],
        ),
    ];
    for (name, flags) in cases {
        let flags = [flags, &["--pending", &pending]].concat();
        let want = f.one_process(&f.p("full.fps"), &[&flags[..], &["--batch", "20"]].concat());
        for i in 0..8 {
            ok(&f.score(name, Some(i), &[&flags[..], &["--k", "20"]].concat(), &[]));
        }
        let extra = ["--model", &model, "--shard-list", &list];
        // Tasks 0, 3 and 5; 1 and 2; then those two groups merged again.
        let err = ok(&group(
            name,
            &[part(name, 0), part(name, 3), part(name, 5)],
            "g1.gpart",
            20,
        ));
        assert!(err.contains("merged 3 task(s)"), "{err}");
        ok(&group(
            name,
            &[part(name, 1), part(name, 2)],
            "g2.gpart",
            20,
        ));
        let g = |n: &str| f.p(&format!("{name}/{n}"));
        ok(&group(
            name,
            &[g("g1.gpart"), g("g2.gpart")],
            "g12.gpart",
            20,
        ));
        let rest: Vec<String> = [4, 6, 7].iter().map(|&i| part(name, i)).collect();
        let tree = batch_of(name, &[&[g("g12.gpart")], &rest[..]].concat(), 20, &extra);
        assert_eq!(tree, want, "{name}: the staged merge differs");
        // A group beside single parts, and a group of the other parts.
        let others: Vec<String> = [1, 2, 4, 6, 7].iter().map(|&i| part(name, i)).collect();
        assert_eq!(
            batch_of(name, &[&[g("g1.gpart")], &others[..]].concat(), 20, &extra),
            want
        );
        ok(&group(name, &others, "g3.gpart", 20));
        assert_eq!(
            batch_of(name, &[g("g1.gpart"), g("g3.gpart")], 20, &extra),
            want
        );
        let meta: serde_json::Value = serde_json::from_str(
            std::fs::read_to_string(g("g3.gpart"))
                .unwrap()
                .lines()
                .nth(1)
                .unwrap()
                .strip_prefix("#meta ")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(meta["task"]["pieces"].as_array().unwrap().len(), 5);
        assert_eq!(meta["shards"].as_array().unwrap().len(), 5);

        // Task 0 in a group and alone; a group left out.
        fails(
            &group(name, &[g("g1.gpart"), part(name, 0)], "bad.gpart", 20),
            &["holds task 0", "g1.gpart", "merged into two parts"],
        );
        assert!(!f.path(&format!("{name}/bad.gpart")).exists());
        fails(
            &staged(name, &[g("g12.gpart"), part(name, 4)], 20, &extra),
            &["no part for task 6", "s6.fps", "none in all: 6, 7"],
        );
    }

    // A floor in a group is checked by the final merge.
    let want = f.one_process(&f.p("full.fps"), &["--acq", "ucb", "--batch", "30"]);
    for i in 0..8 {
        ok(&f.score("floor", Some(i), &["--k", "30"], &[]));
    }
    let best = part_rows(&part("floor", 0))[0];
    let floor = format!("{}:{}", best.0, best.1);
    ok(&f.score("floor", Some(6), &["--k", "30", "--floor", &floor], &[]));
    let six: Vec<String> = (4..8).map(|i| part("floor", i)).collect();
    ok(&group("floor", &six, "g.gpart", 30));
    let head: Vec<String> = (0..4).map(|i| part("floor", i)).collect();
    let all = [&head[..], &[f.p("floor/g.gpart")]].concat();
    fails(
        &staged("floor", &all, 30, &[]),
        &["g.gpart", "floor", "does not reach"],
    );
    // Scored again without the floor, the group merges to the batch.
    ok(&f.score("floor", Some(6), &["--k", "30"], &[]));
    std::fs::remove_file(f.path("floor/g.gpart")).unwrap();
    ok(&group("floor", &six, "g.gpart", 30));
    assert_eq!(batch_of("floor", &all, 30, &[]), want);
}

#[test]
fn array_shards_without_ids_take_their_global_rows() {
    let f = Fixture {
        dir: tempfile::tempdir().unwrap(),
    };
    let mut rng = Rng(3);
    let x = random_dense(&mut rng, 3000, 5);
    write_dense_npy(&f.path("full.npy"), &x);
    let mut start = 0;
    let mut shards = Vec::new();
    for (i, n) in SIZES.iter().enumerate() {
        let rows: Vec<usize> = (start..start + n).collect();
        let name = format!("s{i}.npy");
        write_dense_npy(&f.path(&name), &x.select_rows(&rows));
        shards.push(f.p(&name));
        start += n;
    }
    let Features::Dense { data, .. } = &x else {
        unreachable!()
    };
    let labels: Vec<(String, f64)> = (0..3000)
        .step_by(41)
        .map(|i| {
            (
                i.to_string(),
                f64::from(data[i * 5]) - f64::from(data[i * 5 + 1]),
            )
        })
        .collect();
    write_labels(&f.path("labels.csv"), &labels);
    ok(&poolrank(
        &[
            "fit",
            "--pool",
            &f.p("full.npy"),
            "--labels",
            &f.p("labels.csv"),
            "--quiet",
            "--save-model",
            &f.p("m.model"),
        ],
        &[],
    ));
    let want = f.one_process(
        &f.p("full.npy"),
        &["--acq", "thompson-marginal", "--batch", "30"],
    );
    // Named directly with their offsets (no list): three tasks.
    std::fs::create_dir_all(f.path("direct")).unwrap();
    for (t, range) in [(0usize, 0..3), (1, 3..5), (2, 5..8)] {
        let offset: usize = SIZES[..range.start].iter().sum();
        let mut args = vec![
            "score-shard".to_string(),
            "--model".into(),
            f.p("m.model"),
            "--acq".into(),
            "thompson-marginal".into(),
            "--k".into(),
            "30".into(),
            "--quiet".into(),
            "--row-offset".into(),
            offset.to_string(),
            "--out".into(),
            f.p(&format!("direct/part-{t}.part")),
        ];
        for s in &shards[range] {
            args.extend(["--pool".to_string(), s.clone()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(&poolrank(&args, &[]));
    }
    ok(&f.merge("direct", 30, &[]));
    let got = f.batch("direct");
    assert_eq!(got, want);
    // The ids are global rows: some pick lies past the first shard.
    assert!(got
        .lines()
        .skip(1)
        .any(|l| l.split(',').nth(1).unwrap().parse::<usize>().unwrap() >= 137));

    // The first and last tasks merged into one part (rows that do not join up), then with
    // the middle one; the middle one in two parts is refused.
    let (k, group) = ("30", f.p("group.gpart"));
    let part = |t: usize| f.p(&format!("direct/part-{t}.part"));
    let (p0, p1, p2) = (part(0), part(1), part(2));
    ok(&poolrank(
        &["merge", "--k", k, "--out-part", &group, "--parts", &p0, &p2],
        &[],
    ));
    let staged = f.p("staged.csv");
    ok(&poolrank(
        &["merge", "--k", k, "--out", &staged, "--parts", &group, &p1],
        &[],
    ));
    assert_eq!(std::fs::read_to_string(&staged).unwrap(), want);
    let again = f.p("again.gpart");
    ok(&poolrank(
        &["merge", "--k", k, "--out-part", &again, "--parts", &p1, &p2],
        &[],
    ));
    fails(
        &poolrank(
            &[
                "merge", "--k", k, "--out", &staged, "--parts", &group, &again,
            ],
            &[],
        ),
        &["again.gpart", "overlap those of", "group.gpart"],
    );
    assert_eq!(std::fs::read_to_string(&staged).unwrap(), want);

    // A shard left out in the middle: the rows do not join up.
    std::fs::remove_file(f.path("direct/part-0.part")).unwrap();
    fails(
        &f.merge("direct", 30, &[]),
        &[
            "part-1.part",
            "starts at row 638",
            "no part covers rows 0..638",
        ],
    );
}

#[test]
fn the_index_comes_from_the_job_array() {
    let f = Fixture::fps();
    for i in 0..8 {
        ok(&f.score("by-flag", Some(i), &["--k", "20"], &[]));
    }
    ok(&f.merge("by-flag", 20, &[]));
    let vars = [
        "SLURM_ARRAY_TASK_ID",
        "JOB_COMPLETION_INDEX",
        "AWS_BATCH_JOB_ARRAY_INDEX",
    ];
    for i in 0..8 {
        let index = i.to_string();
        ok(&f.score("by-env", None, &["--k", "20"], &[(vars[i % 3], &index)]));
        // The same rows as the part --index wrote.
        let rows = |folder: &str| {
            std::fs::read_to_string(f.path(&format!("{folder}/part-{i}.part")))
                .unwrap()
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(rows("by-env"), rows("by-flag"), "task {i}");
    }
    ok(&f.merge("by-env", 20, &[]));
    assert_eq!(f.batch("by-env"), f.batch("by-flag"));

    fails(
        &f.score("none", None, &["--k", "20"], &[("UNRELATED", "1")]),
        &["--index", "SLURM_ARRAY_TASK_ID"],
    );
    fails(
        &f.score(
            "none",
            None,
            &["--k", "20"],
            &[("SLURM_ARRAY_TASK_ID", "x")],
        ),
        &["SLURM_ARRAY_TASK_ID=\"x\"", "expected a task index"],
    );
    fails(
        &f.score(
            "none",
            None,
            &["--k", "20"],
            &[("SLURM_ARRAY_TASK_ID", "8")],
        ),
        &["task 8 is past the end", "8 task(s)"],
    );
}

#[test]
fn merge_refuses_missing_duplicated_foreign_and_damaged_parts() {
    let f = Fixture::fps();
    for i in 0..8 {
        ok(&f.score("run", Some(i), &["--k", "30"], &[]));
    }
    ok(&f.merge("run", 30, &[]));
    let good = f.batch("run");
    let part = |i: usize| f.path(&format!("run/part-{i}.part"));
    let aside = f.path("aside.part");

    // Missing: named by its task and, with the list, its shard.
    std::fs::rename(part(5), &aside).unwrap();
    fails(
        &f.merge("run", 30, &["--shard-list", &f.p("list.tsv")]),
        &["no part for task 5", "s5.fps", "--index 5"],
    );
    std::fs::rename(&aside, part(5)).unwrap();

    // Duplicated: a copy of a part under another name.
    std::fs::copy(part(2), f.path("run/part-2-again.part")).unwrap();
    fails(&f.merge("run", 30, &[]), &["holds task 2", "part-2.part"]);
    std::fs::remove_file(f.path("run/part-2-again.part")).unwrap();

    // Foreign: another model, other settings, another list.
    let labels = std::fs::read_to_string(f.path("labels.csv")).unwrap();
    let fewer: String = labels.lines().take(40).map(|l| format!("{l}\n")).collect();
    std::fs::write(f.path("fewer.csv"), fewer).unwrap();
    f.fit("other.model", "fewer.csv");
    let other_model = f.p("other.model");
    let foreign = |model: &str, extra: &[&str], expect: &[&str]| {
        std::fs::copy(part(3), &aside).unwrap();
        let out = part(3).to_string_lossy().into_owned();
        let list = f.p("list.tsv");
        let mut args = vec![
            "score-shard",
            "--model",
            model,
            "--shard-list",
            &list,
            "--index",
            "3",
            "--quiet",
            "--out",
            &out,
        ];
        args.extend_from_slice(extra);
        if !extra.contains(&"--k") {
            args.extend_from_slice(&["--k", "30"]);
        }
        ok(&poolrank(&args, &[]));
        fails(&f.merge("run", 30, &[]), expect);
        std::fs::rename(&aside, part(3)).unwrap();
    };
    let model = f.p("m.model");
    foreign(&other_model, &[], &["part-3.part", "another model"]);
    foreign(
        &model,
        &["--beta", "3"],
        &["part-3.part", "another acquisition"],
    );
    foreign(&model, &["--seed", "1"], &["part-3.part", "another seed"]);
    foreign(&model, &["--k", "31"], &["part-3.part", "another k"]);
    fails(
        &f.merge("run", 30, &["--model", &other_model]),
        &["part-0.part", "not the one given"],
    );

    // Damaged: cut short, or a row altered.
    let bytes = std::fs::read(part(6)).unwrap();
    std::fs::write(part(6), &bytes[..bytes.len() / 2]).unwrap();
    fails(&f.merge("run", 30, &[]), &["part-6.part", "truncated"]);
    let text = String::from_utf8(bytes.clone()).unwrap();
    let row = text.lines().nth(4).unwrap();
    let altered = text.replacen(row, &row.replacen('\t', "9\t", 1), 1);
    std::fs::write(part(6), altered).unwrap();
    fails(&f.merge("run", 30, &[]), &["part-6.part", "checksum"]);
    std::fs::write(part(6), &bytes).unwrap();

    // A batch larger than the parts kept.
    fails(
        &f.merge("run", 31, &[]),
        &["kept its best 30", "--k 31 or more"],
    );

    // A shard changed since it was scored (another row), and a list that does not match it.
    let shard = f.path("s4.fps");
    let before = std::fs::read(&shard).unwrap();
    let extra_line = String::from_utf8(before.clone())
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .replace("\tm", "\tnew");
    std::fs::write(&shard, [&before[..], extra_line.as_bytes(), b"\n"].concat()).unwrap();
    fails(
        &f.merge("run", 30, &[]),
        &["s4.fps", "changed since", "part-4.part"],
    );
    fails(
        &f.score("stale", Some(4), &["--k", "30"], &[]),
        &["s4.fps", "has 63 rows, but the shard list gives 62"],
    );
    std::fs::write(&shard, &before).unwrap();
    // Same bytes, newer time: the checksum says it did not change.
    ok(&f.merge("run", 30, &["--verify-shards"]));
    assert_eq!(f.batch("run"), good);
    std::fs::write(f.path("list2.tsv"), "s0.fps\t137\n").unwrap();
    fails(
        &f.merge("run", 30, &["--shard-list", &f.p("list2.tsv")]),
        &[
            "list2.tsv",
            "is not the shard list the parts were scored from",
        ],
    );

    // A failed merge leaves the earlier batch as it was.
    std::fs::rename(part(0), &aside).unwrap();
    fails(&f.merge("run", 30, &[]), &["no part for task 0"]);
    assert_eq!(f.batch("run"), good);
    // A part is never also the output.
    std::fs::rename(&aside, part(0)).unwrap();
    let out = part(1).to_string_lossy().into_owned();
    fails(
        &poolrank(
            &[
                "merge",
                "--parts",
                &*f.p("run/part-*.part"),
                "--k",
                "30",
                "--out",
                &out,
            ],
            &[],
        ),
        &["part-1.part", "refused as an output"],
    );
    fails(
        &poolrank(
            &[
                "merge",
                "--parts",
                &*f.p("run/nothing-*.part"),
                "--k",
                "30",
                "--out",
                &*f.p("x.csv"),
            ],
            &[],
        ),
        &["nothing-*.part", "no file matches"],
    );
}

#[test]
fn gpu_and_cpu_workers_give_parts_that_merge_to_the_same_batch() {
    let f = Fixture::fps();
    for acq in ["ucb", "thompson-marginal"] {
        let want = f.one_process(&f.p("full.fps"), &["--acq", acq, "--batch", "30"]);
        for i in 0..8 {
            let backend = ["gpu", "cpu"][i % 2];
            let err = ok(&f.score(
                acq,
                Some(i),
                &["--acq", acq, "--k", "30", "--backend", backend],
                &[("POOLRANK_ALLOW_SOFTWARE_GPU", "1")],
            ));
            assert!(err.contains(&format!("task {i}")), "{err}");
        }
        let summary = f.p(&format!("{acq}/summary.json"));
        ok(&f.merge(acq, 30, &["--summary", &summary]));
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
        assert_eq!(s["backends"].as_object().unwrap().len(), 2, "{s}");
        // The same candidates in the same order (the GPU's scores may differ in the last bits).
        let picks = |text: &str| -> Vec<String> {
            text.lines()
                .skip(1)
                .map(|l| l.split(',').nth(2).unwrap().to_string())
                .collect()
        };
        assert_eq!(picks(&f.batch(acq)), picks(&want), "{acq}");
    }
}

/// `shard-list` counts each shard's rows and lists the ids file `featurize` wrote beside a
/// `.npz`, with paths relative to the list's folder.
#[test]
fn shard_list_counts_rows_and_names_ids_files() {
    let f = Fixture::fps();
    let list = std::fs::read_to_string(f.path("list.tsv")).unwrap();
    let rows: Vec<&str> = list.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rows.len(), 8);
    for (i, line) in rows.iter().enumerate() {
        assert_eq!(*line, format!("s{i}.fps\t{}", SIZES[i]));
    }
    std::fs::create_dir_all(f.path("sub")).unwrap();
    std::fs::write(f.path("mols.smi"), "CCO a\nc1ccccc1 b\nCCN c\n").unwrap();
    ok(&poolrank(
        &[
            "featurize",
            "--smiles",
            &f.p("mols.smi"),
            "--quiet",
            "--out",
            &f.p("sub/lib.npz"),
        ],
        &[],
    ));
    ok(&poolrank(
        &["shard-list", "--out", &f.p("npz.tsv"), &f.p("sub/lib.npz")],
        &[],
    ));
    let list = std::fs::read_to_string(f.path("npz.tsv")).unwrap();
    assert_eq!(
        list.lines().nth(1),
        Some("sub/lib.npz\t3\tsub/lib.ids.txt"),
        "{list}"
    );
    fails(
        &poolrank(
            &["shard-list", "--out", &f.p("x.tsv"), &f.p("missing.fps")],
            &[],
        ),
        &["missing.fps"],
    );
}
