//! The built-in demo: Enamine 10k docking scores and SMILES (embedded), the SMILES featurized
//! natively (checked against the shipped RDKit counts), a seeded random 1% labeled, the next 1%
//! picked by UCB on MinMax/Morgan counts, and how good those picks really are.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use poolrank::data::{read_labels, IdList, LabelSpec, Labels, Pool};
use poolrank::engine::{run_select, BatchSize, SelectParams};
use poolrank::error::{Error, Result};
use poolrank::pool::FilePool;
use poolrank::rng::seeded_order;
use poolrank::Acquisition;

/// The demo pool: Morgan radius-2 count fingerprints, 2048 features (scipy CSR `.npz`).
pub const ENAMINE10K_COUNTS: &[u8] =
    include_bytes!("../../data/enamine10k/enamine10k_morgan2_2048.counts.npz");
/// The demo labels: `id,smiles,score` (Vina docking score, lower is better), gzipped CSV.
pub const ENAMINE10K_SCORES: &[u8] =
    include_bytes!("../../data/enamine10k/enamine10k_morgan2_2048.scores.csv.gz");

/// The demo files, unpacked into a fresh temporary folder that is removed on drop.
pub struct DemoFiles {
    dir: PathBuf,
}

impl DemoFiles {
    /// Writes the embedded pool, its ids and the scores into a new temporary folder.
    pub fn unpack() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "poolrank-demo-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let files = DemoFiles { dir };
        let write = |name: &str, bytes: &[u8]| {
            let p = files.dir.join(name);
            std::fs::write(&p, bytes).map_err(|e| Error::io(&p, e))
        };
        write("pool.npz", ENAMINE10K_COUNTS)?;
        write("scores.csv.gz", ENAMINE10K_SCORES)?;
        let all = read_labels(&LabelSpec::new(files.scores()))?;
        write("ids.txt", (all.ids.join("\n") + "\n").as_bytes())?;
        Ok(files)
    }

    /// The count-fingerprint pool.
    pub fn pool(&self) -> PathBuf {
        self.dir.join("pool.npz")
    }

    /// One id per pool row.
    pub fn ids(&self) -> PathBuf {
        self.dir.join("ids.txt")
    }

    /// Every molecule's docking score (`id,smiles,score`).
    pub fn scores(&self) -> PathBuf {
        self.dir.join("scores.csv.gz")
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for DemoFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the demo and returns the text to print.
pub fn run(seed: u64) -> Result<String> {
    let files = DemoFiles::unpack()?;
    let all = read_labels(&LabelSpec::new(files.scores()))?;
    let n = all.ids.len();
    let k = ((n as f64) * 0.01).round() as usize;
    let labeled: Vec<usize> = seeded_order(n, seed)[..k].to_vec();
    let labels = Labels {
        source: "the demo's labeled set".into(),
        ids: labeled.iter().map(|&i| all.ids[i].clone()).collect(),
        values: labeled.iter().map(|&i| all.values[i]).collect(),
        lines: Vec::new(),
    };

    // The chemist's path: the SMILES become fingerprints here, and those are the pool.
    let (featurized, featurize_line) = featurize_smiles(&files)?;
    let params = SelectParams {
        minimize: true,
        acquisition: Acquisition::Ucb { beta: 2.0 },
        batch: BatchSize::Count(k),
        seed,
        ..SelectParams::default()
    };
    let sel = run_select(&params.check()?, &featurized, &labels, &IdList::default())?;

    // How good are the picks really? Compare with the pool and with random picks.
    let mut sorted = all.values.clone();
    sorted.sort_by(f64::total_cmp);
    let top_cut = sorted[k - 1];
    let pool_mean = all.values.iter().sum::<f64>() / n as f64;
    let picked: Vec<f64> = sel.picks.iter().map(|p| all.values[p.index]).collect();
    let picked_mean = picked.iter().sum::<f64>() / picked.len() as f64;
    let hits = picked.iter().filter(|&&v| v <= top_cut).count();
    let labeled_hits = labeled
        .iter()
        .filter(|&&i| all.values[i] <= top_cut)
        .count();

    let s = &sel.summary;
    let mut out = String::new();
    let _ = writeln!(out, "poolrank demo: Enamine 10k docking scores (thymidylate kinase, AutoDock Vina; lower is better)");
    let _ = writeln!(out, "  data: MolPAL (Graff, Shakhnovich & Coley, Chem. Sci. 2021), MIT licence; Morgan r=2 counts, 2048 features");
    let _ = writeln!(out, "{featurize_line}");
    let _ = writeln!(
        out,
        "  pool {} molecules; {} labeled at random (seed {seed}); picking the next {k}",
        s.pool_size, s.labeled
    );
    let _ = writeln!(
        out,
        "  model: GP, {} kernel, signal var {:.3}, noise {:.4} (standardised labels, fitted by max. likelihood in {:.2} s)",
        s.fit.kernel, s.fit.signal_var, s.fit.noise, s.fit.info.seconds
    );
    let _ = writeln!(
        out,
        "  acquisition: UCB (mean + 2 sd on the negated score); scored {} candidates in {:.3} s",
        s.candidates, s.seconds.score
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "  rank  id          predicted      sd   true score");
    for p in sel.picks.iter().take(10) {
        let _ = writeln!(
            out,
            "  {:>4}  {:<10} {:>9.2} {:>7.2} {:>12.1}",
            p.rank, p.id, p.mean, p.sd, all.values[p.index]
        );
    }
    let _ = writeln!(out, "  ... ({} more)", sel.picks.len().saturating_sub(10));
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  true mean score of the {k} picks: {picked_mean:.2} (pool mean {pool_mean:.2})"
    );
    let _ = writeln!(
        out,
        "  picks in the true top 1% (score <= {top_cut}): {hits} of {k}; the random labeled set held {labeled_hits}, random picks would hold about {:.1}",
        k as f64 * k as f64 / n as f64
    );
    let _ = writeln!(
        out,
        "  same run on your data: poolrank featurize --smiles library.smi --out pool.npz, then"
    );
    let _ = writeln!(out, "    poolrank select --pool pool.npz --ids pool.ids.txt --labels LABELS --minimize --batch {k} --out batch.csv");
    let _ = writeln!(out);
    out.push_str(&simulation(&all, &featurized, seed)?);
    Ok(out)
}

/// Featurizes the embedded SMILES (`id,smiles,score`) into `featurized.npz` beside the shipped
/// RDKit counts and compares the two; returns the pool spec and a line for the report.
fn featurize_smiles(files: &DemoFiles) -> Result<(FilePool, String)> {
    use poolrank::data::Tile;
    use poolrank::featurize::{featurize_file, FeaturizeConfig, SmilesSource};
    let out = files.dir().join("featurized.npz");
    let mut input = SmilesSource::new(files.scores());
    input.layout = Some(poolrank::featurize::Layout::Delimited { delimiter: b',' });
    let summary = featurize_file(&FeaturizeConfig::new(input, &out))?;
    let read_all = |spec: &FilePool| -> Result<Tile> {
        let mut reader = spec.open()?;
        let mut tile = Tile::new(reader.kind());
        // The demo's pools are small: one tile of the most rows a tile may hold is all of it.
        reader.read_tile(poolrank::data::limits::MAX_TILE_ROWS, &mut tile)?;
        Ok(tile)
    };
    let mut pool = FilePool::new(&out);
    pool.ids = summary.ids.clone();
    let ours = read_all(&pool)?;
    let mut shipped = FilePool::new(files.pool());
    shipped.ids = Some(files.ids());
    let rdkit = read_all(&shipped)?;
    let differ = (0..ours.len().min(rdkit.len()))
        .filter(|&i| ours.features.counts_row(i) != rdkit.features.counts_row(i))
        .count()
        + ours.len().abs_diff(rdkit.len());
    let verdict = if differ == 0 && ours.ids == rdkit.ids {
        "identical to the RDKit counts shipped with the data".to_string()
    } else {
        format!("{differ} molecule(s) differ from the RDKit counts shipped with the data")
    };
    let line = format!(
        "  featurized {} SMILES natively (Morgan r=2 counts, {}) in {:.2} s, {:.0} molecules/s: {verdict}",
        summary.molecules,
        poolrank::featurize::ENGINE,
        summary.seconds,
        summary.molecules_per_second
    );
    Ok((pool, line))
}

/// A short retrospective simulation on the demo pool: does AL beat random here?
fn simulation(all: &Labels, pool: &FilePool, seed: u64) -> Result<String> {
    use poolrank::sim::{load_labeled_pool, simulate, verdict_table, SimConfig};
    let (data, _) = load_labeled_pool(pool, all, &IdList::default())?;
    let mut cfg = SimConfig::new();
    cfg.reps = 3;
    cfg.seed = seed;
    cfg.minimize = true;
    let result = simulate(&data, &cfg)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  does active learning beat random on this pool? {} replicates of: 1% random, then 5 rounds of 1%; top-1% recall ({:.1} s)",
        cfg.reps, result.seconds
    );
    for line in verdict_table(&result).lines() {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(
        out,
        "  more replicates, other strategies, curves: poolrank simulate --help"
    );
    Ok(out)
}
