//! The `poolrank` command line: parse the flags (`args`), convert them into the library's
//! checked parameters, make one call, write the outputs all or none.

mod args;
mod shard;

use args::{
    in_flags, Cli, Command, DiagnoseArgs, FeaturizeArgs, FitArgs, SelectArgs, SimulateArgs,
    SynthArgs,
};

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use poolrank::data::{read_labels, IdList};
use poolrank::gp::Inducing;
use poolrank::pool::FilePool;
use poolrank::{report, SelectParams};

/// mimalloc: the SMILES parser and the ring and aromaticity perception of `featurize` allocate
/// small buffers per molecule; the system allocator cost about 20% of featurize's time
/// (BENCHMARKS.md, Featurize).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    on_signal_remove_staged();
    poolrank::progress::set_reporter(Box::new(poolrank_cli::progress::Bars));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", in_flags(e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Select(args) => {
            let threads = args.run.threads;
            with_threads(threads, || select(*args))
        }
        Command::Fit(args) => {
            let threads = args.run.threads;
            with_threads(threads, || fit(*args))
        }
        Command::Simulate(args) => {
            let threads = args.threads;
            with_threads(threads, || simulate(*args))
        }
        Command::Synth(args) => synth(args),
        Command::Diagnose(args) => {
            let threads = args.run.threads;
            with_threads(threads, || diagnose(*args))
        }
        Command::Bench(args) => with_threads(args.threads, || {
            use poolrank_cli::bench::BenchMode;
            let mode = match args.posterior {
                true => BenchMode::Posterior,
                false => BenchMode::Select {
                    acquisition: args.acq.get()?,
                    batch: args.batch,
                    prune: !args.no_prune,
                },
            };
            let cfg = poolrank_cli::bench::BenchConfig {
                mode,
                pool_size: args.pool_size,
                train: args.train,
                bits: args.bits,
                dim: args.dim,
                backend: args.backend,
                seed: args.seed,
                tile_rows: args.tile_rows,
                compare_cpu: args.compare_cpu,
                model: match (args.inducing, args.exact) {
                    (Some(m), _) => Inducing::Points(m),
                    (None, true) => Inducing::Exact,
                    (None, false) => Inducing::Auto,
                },
                ..Default::default()
            };
            let report = poolrank_cli::bench::run_bench(&cfg)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            Ok(())
        }),
        Command::Devices(args) => {
            let list =
                poolrank::backend::gpu::list_adapters(&poolrank::backend::GpuOptions::default());
            if args.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{list}");
            }
            Ok(())
        }
        Command::Featurize(args) => {
            let threads = args.threads;
            with_threads(threads, || featurize(args))
        }
        Command::ShardList(args) => with_threads(args.threads, || shard::shard_list(args)),
        Command::ScoreShard(args) => {
            let threads = args.run.threads;
            with_threads(threads, || shard::score_shard(*args))
        }
        Command::Merge(args) => with_threads(args.threads, || shard::merge(args)),
        Command::Demo(args) => with_threads(args.threads, || {
            let report = poolrank_cli::demo::run(args.seed)?;
            print!("{report}");
            Ok(())
        }),
    }
}

/// On SIGINT or SIGTERM: remove every staged output (the previous files stay as they were) and
/// exit 128 + the signal (130, 143), as a shell reports a process the signal ended.
fn on_signal_remove_staged() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        // Without a handler the default action ends the process; staged files may remain.
        eprintln!("warning: cannot handle SIGINT/SIGTERM; an interrupted run may leave hidden staged files");
        return;
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let removed = report::remove_staged();
            eprintln!(
                "interrupted: removed {removed} staged file(s); earlier outputs are unchanged"
            );
            std::process::exit(128 + sig);
        }
    });
}

/// Runs `f` on a rayon pool of `threads` workers (all cores by default).
fn with_threads(threads: Option<usize>, f: impl FnOnce() -> Result<()> + Send) -> Result<()> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        anyhow::ensure!(t > 0, "--threads must be at least 1");
        anyhow::ensure!(
            t <= poolrank::data::limits::MAX_THREADS,
            "--threads must be at most {}, got {t}",
            poolrank::data::limits::MAX_THREADS
        );
        builder = builder.num_threads(t);
    }
    let pool = builder.build().context("starting worker threads")?;
    let n = pool.current_num_threads();
    faer::set_global_parallelism(match std::num::NonZeroUsize::new(n) {
        Some(n) if n.get() > 1 => faer::Par::Rayon(n),
        _ => faer::Par::Seq,
    });
    pool.install(f)
}

fn simulate(a: SimulateArgs) -> Result<()> {
    use poolrank::sim::{load_labeled_pool, simulate, SimConfig};
    let (pool, labels) = a.input.specs();
    let mut cfg = SimConfig::new();
    if a.objectives.objectives.is_some() {
        return simulate_objectives(a);
    }
    if !a.strategies.is_empty() {
        cfg.strategies = a
            .strategies
            .iter()
            .map(|s| Ok(args::acquisition(s, a.beta, a.xi)?.with_samples(a.samples)))
            .collect::<Result<_>>()?;
    }
    cfg.init = a.init;
    cfg.batch = a.batch;
    cfg.rounds = a.rounds;
    cfg.topk = a.topk;
    cfg.reps = a.reps;
    cfg.seed = a.seed;
    cfg.mode = a.batch_mode;
    cfg.temperature = a.temperature;
    cfg.power = a.power;
    cfg.joint_sampler = a.joint_sampler;
    cfg.prior_features = a.prior_features;
    cfg.objective = a.objective;
    cfg.test = a.test;
    cfg.model = a.model.spec();
    cfg.compare_inducing = a.compare_inducing.clone();
    cfg.refit = !a.hold_hyperparameters;
    cfg.minimize = a.input.minimize;
    cfg.backend = a.backend;
    cfg.progress = !a.quiet;
    cfg.prune = !a.no_prune;
    cfg.check_settings()?;
    let mut set = report::simulation_outputs(&a.out)
        .inputs([&pool.path, &labels.path])
        .inputs(pool.ids.as_ref())
        .inputs(a.test_ids.as_ref())
        .check()?;
    pool_notes(&pool)?;
    let test = IdList::read_or_empty(a.test_ids.as_deref())?;
    let (data, test_rows) = load_labeled_pool(&pool, &read_labels(&labels)?, &test)?;
    if a.test_ids.is_some() {
        cfg.test_rows = Some(test_rows);
    }
    let result = simulate(&data, &cfg)?;
    let [curves, summary, svg, png] = report::write_simulation(&mut set, &a.out, &result)?;
    set.commit()?;
    print!("{}", poolrank::sim::verdict_table(&result));
    eprintln!(
        "wrote {}, {}, {} and {}",
        curves.display(),
        summary.display(),
        svg.display(),
        png.display()
    );
    Ok(())
}

/// `simulate --objectives`: Pareto strategies against random on hypervolume.
fn simulate_objectives(a: SimulateArgs) -> Result<()> {
    use poolrank::multi::ParetoAcquisition;
    use poolrank::sim::pareto::{
        load_multi_labeled_pool, pareto_verdict_table, simulate_objectives, ParetoSimConfig,
    };
    let o = &a.objectives;
    anyhow::ensure!(
        a.test_ids.is_none() && a.compare_inducing.is_empty() && !a.hold_hyperparameters,
        "--test-ids, --compare-inducing and --hold-hyperparameters are one-objective settings; with --objectives every round refits every objective's GP"
    );
    let objectives = o.objectives.clone().expect("checked by the caller");
    let mut cfg = ParetoSimConfig::new(objectives.clone());
    if !a.strategies.is_empty() {
        cfg.strategies = a
            .strategies
            .iter()
            .filter(|s| s.as_str() != "random")
            .map(|s| {
                s.parse::<ParetoAcquisition>().map_err(|_| {
                    anyhow::anyhow!(
                        "invalid --strategies: {s} scores one objective; with --objectives use ehvi, phvi, pareto-ucb or parego"
                    )
                })
            })
            .collect::<Result<_>>()?;
    }
    cfg.beta = a.beta;
    cfg.ref_point = o.ref_point.clone();
    cfg.constraints = o.constraint.clone();
    let s = &mut cfg.sim;
    s.init = a.init;
    s.batch = a.batch;
    s.rounds = a.rounds;
    s.topk = a.topk;
    s.reps = a.reps;
    s.seed = a.seed;
    s.model = a.model.spec();
    s.mode = a.batch_mode;
    s.backend = a.backend;
    s.progress = !a.quiet;
    s.prune = !a.no_prune;
    let (pool, labels) = a.input.specs();
    let mut set = report::pareto_simulation_outputs(&a.out)
        .inputs([&pool.path, &labels.path])
        .inputs(pool.ids.as_ref())
        .check()?;
    pool_notes(&pool)?;
    let mut columns = poolrank::multi::MultiParams::new(objectives);
    columns.constraints = cfg.constraints.clone();
    let read =
        poolrank::data::read_label_columns(&labels.path, &labels.id_col, &columns.columns())?;
    let data = load_multi_labeled_pool(&pool, &read)?;
    let result = simulate_objectives(&data, &cfg)?;
    let paths = report::write_pareto_simulation(&mut set, &a.out, &result)?;
    set.commit()?;
    print!("{}", pareto_verdict_table(&result));
    eprintln!(
        "wrote {}",
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

fn featurize(a: FeaturizeArgs) -> Result<()> {
    use poolrank::featurize::{featurize_file, FeaturizeConfig, SmilesSource};
    let mut input = SmilesSource::new(&a.smiles);
    input.smiles_col = a.smiles_col;
    input.id_col = a.id_col;
    let mut cfg = FeaturizeConfig::new(input, &a.out);
    cfg.radius = a.radius;
    cfg.nbits = a.bits;
    cfg.counts = match (a.counts, a.bits_only) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    cfg.skip_invalid = a.skip_invalid.clone();
    cfg.chunk = a.chunk;
    cfg.progress = !a.quiet;
    let s = featurize_file(&cfg)?;
    eprintln!(
        "featurized {} molecules in {:.2} s ({:.0} molecules/s on {} thread(s)); wrote {}{}",
        s.molecules,
        s.seconds,
        s.molecules_per_second,
        rayon::current_num_threads(),
        a.out.display(),
        match &s.ids {
            Some(ids) => format!(
                " and {} (pass it to select/simulate with --ids)",
                ids.display()
            ),
            None => String::new(),
        }
    );
    if let Some(path) = &a.skip_invalid {
        eprintln!(
            "left out {} invalid molecule(s), listed in {}",
            s.rejected,
            path.display()
        );
    }
    eprintln!("provenance: {}", s.provenance);
    Ok(())
}

/// Warns (on stderr) when the pool's recorded fingerprint settings differ from the defaults
/// that `featurize` and SMILES pools use, and notes that SMILES pools are featurized on the fly.
fn pool_notes(pool: &FilePool) -> Result<()> {
    use poolrank::data::Pool;
    use poolrank::data::PoolFormat;
    if matches!(
        pool.resolve_format()?,
        PoolFormat::Smiles | PoolFormat::SmilesCsv
    ) {
        eprintln!(
            "note: featurizing {} on the fly (Morgan radius 2, 2048 counts) on every pass; `poolrank featurize` once is faster for repeated rounds",
            pool.path.display()
        );
    }
    if let Some(w) = poolrank::featurize::provenance_warning(pool.provenance()?.as_deref()) {
        eprintln!("warning: {w}");
    }
    Ok(())
}

fn synth(a: SynthArgs) -> Result<()> {
    use poolrank::sim::synth::{generate, Scenario};
    let scenario = a.scenario;
    // Only `shift` draws a separate test set.
    let paths = report::SynthPaths::new(&a.out, a.bits.is_some(), scenario == Scenario::Shift);
    let mut set = paths.outputs().check()?;
    let data = generate(scenario, a.n, a.dim, a.seed)?;
    let fingerprints = a
        .bits
        .map(|b| poolrank::sim::synth::to_bits(&data.pool.features, b, a.seed))
        .transpose()?;
    report::write_synth(&mut set, &paths, &data, fingerprints.as_ref())?;
    if !data.objectives.is_empty() {
        // `pareto`: the labels hold a column per objective (`id,f1,f2,f3`) instead of `score`;
        // staging the output again replaces the `id,score` file.
        set.write(&paths.labels, |w| data.write_objectives_csv(w))?;
    }
    set.commit()?;
    if let Some(path) = &paths.test_ids {
        eprintln!(
            "wrote {} ({} test candidates: simulate --objective accuracy --test-ids {})",
            path.display(),
            data.test_rows.len(),
            path.display()
        );
    }
    eprintln!(
        "wrote {} and {} ({} candidates, {})",
        paths.pool.display(),
        paths.labels.display(),
        a.n,
        match a.bits {
            Some(b) => format!("{b}-bit fingerprints of {} latent dimensions", a.dim),
            None => format!("{} features", a.dim),
        }
    );
    Ok(())
}

fn diagnose(a: DiagnoseArgs) -> Result<()> {
    use poolrank::diagnose::{render, run_diagnose, DiagnoseConfig};
    let (pool, labels) = a.input.specs();
    let mut cfg = DiagnoseConfig::default();
    cfg.select.model = a.model.spec();
    cfg.select.acquisition = a.acq.get()?;
    cfg.select.minimize = a.input.minimize;
    cfg.select.batch = a.batch;
    a.run.apply(&mut cfg.select);
    cfg.folds = a.folds;
    cfg.nn_sample = a.nn_sample;
    cfg.objective = a.objective;
    let mut set = report::diagnosis_outputs(&a.out)
        .inputs([&a.input.pool.pool, &a.input.labels])
        .inputs(a.input.pool.ids.as_ref())
        .inputs(a.test.as_ref())
        .check()?;
    cfg.select.check()?;
    if let Some(objectives) = &a.objectives {
        // Each objective's direction comes from its entry; --y-col and --minimize are refused
        // beside --objectives by the parser.
        let labels = poolrank::data::read_objective_labels(
            &a.input.labels,
            &a.input.pool.id_col,
            objectives,
        )?;
        let test = IdList::read_or_empty(a.test.as_deref())?;
        let r = poolrank::diagnose::run_diagnose_objectives(&cfg, &pool, &labels, &test)?;
        let [json, html] = report::write_multi_diagnosis(&mut set, &a.out, &r)?;
        set.commit()?;
        print!("{}", render::multi_text(&r));
        eprintln!("wrote {} and {}", json.display(), html.display());
        return Ok(());
    }
    let labels = read_labels(&labels)?;
    let test = IdList::read_or_empty(a.test.as_deref())?;
    let r = run_diagnose(&cfg, &pool, &labels, &test)?;
    let [json, html] = report::write_diagnosis(&mut set, &a.out, &r)?;
    set.commit()?;
    print!("{}", render::text(&r));
    eprintln!("wrote {} and {}", json.display(), html.display());
    Ok(())
}

fn fit(a: FitArgs) -> Result<()> {
    let (pool, labels) = a.input.specs();
    let mut set = report::Outputs::new()
        .inputs([&pool.path, &labels.path])
        .inputs(pool.ids.as_ref())
        .output(&a.save_model)
        .outputs(a.summary.as_ref())
        .check()?;
    pool_notes(&pool)?;
    let mut params = SelectParams {
        model: a.model.spec(),
        minimize: a.input.minimize,
        ..SelectParams::default()
    };
    a.run.apply(&mut params);
    let params = params.check()?;
    let fitted = poolrank::run_fit(&params, &pool, &read_labels(&labels)?)?;
    fitted.model.save_into(&mut set, &a.save_model)?;
    if let Some(path) = &a.summary {
        report::write_json(&mut set, path, &fitted.summary)?;
    }
    set.commit()?;
    let s = &fitted.summary;
    let gp = fitted.model.gp();
    eprintln!(
        "fitted {} on {} labels of {} candidates ({}): signal_var {:.4}, noise {:.4}{}; log marginal likelihood {:.2}; wrote {}",
        s.fit.kernel,
        s.labeled,
        s.pool_size,
        s.features,
        gp.signal_var,
        gp.noise,
        gp.lengthscale()
            .map(|l| format!(", lengthscale {l:.4}"))
            .unwrap_or_default(),
        gp.info.log_marginal_likelihood,
        a.save_model.display()
    );
    Ok(())
}

/// `select`'s settings from its arguments but the acquisition (one objective's, or the
/// Pareto one of `--objectives`), so that both paths see every flag: the library refuses what
/// does not apply to several objectives.
fn select_params(a: &SelectArgs) -> SelectParams {
    SelectParams {
        model: a.model.spec(),
        minimize: a.minimize,
        batch: a.batch,
        mode: a.batch_mode,
        temperature: a.temperature,
        power: a.power,
        shortlist: a.shortlist,
        max_sim: a.max_sim,
        joint_sampler: a.joint_sampler,
        prior_features: a.prior_features,
        round: a.round,
        prune: !a.no_prune,
        ..SelectParams::default()
    }
}

fn select(a: SelectArgs) -> Result<()> {
    if a.objectives.objectives.is_some() {
        return select_objectives(a);
    }
    let pool = a.pool.spec();
    let labels = a
        .pool
        .labels(a.labels.clone().unwrap_or_default(), &a.y_col);
    let mut set = report::Outputs::new()
        .input(&pool.path)
        .inputs(a.labels.as_ref())
        .inputs(pool.ids.as_ref())
        .inputs(a.pending.as_ref())
        .inputs(a.model_file.as_ref())
        .output(&a.out)
        .outputs(a.summary.as_ref())
        .check()?;
    pool_notes(&pool)?;
    let mut params = SelectParams {
        acquisition: a.acq.get()?,
        ..select_params(&a)
    };
    a.run.apply(&mut params);
    let params = params.check()?;
    let selection = match &a.model_file {
        None => {
            let labels = read_labels(&labels)?;
            let pending = IdList::read_or_empty(a.pending.as_deref())?;
            poolrank::run_select(&params, &pool, &labels, &pending)?
        }
        Some(path) => {
            let model = poolrank::FittedModel::load(path)?;
            anyhow::ensure!(
                !a.minimize || model.minimize(),
                "--minimize: {} was fitted to maximise its labels; refit with `poolrank fit --minimize`",
                path.display()
            );
            eprintln!(
                "model: {} ({} on {}, {} labels, {})",
                path.display(),
                model.gp().kernel.kind.name(),
                model.features(),
                model.labeled_ids().len(),
                if model.minimize() {
                    "minimising"
                } else {
                    "maximising"
                }
            );
            if a.labels.is_some() {
                let l = read_labels(&labels)?;
                model.check_labels(&labels.path, &l.ids, &l.values)?;
            }
            let pending = IdList::read_or_empty(a.pending.as_deref())?;
            poolrank::run_select_model(&params, &pool, &model, &pending)?
        }
    };
    report::write_batch_csv(&mut set, &a.out, &selection.picks)?;
    if let Some(path) = &a.summary {
        report::write_json(&mut set, path, &selection.summary)?;
    }
    set.commit()?;
    let s = &selection.summary;
    eprintln!("backend: {}", s.backend_choice);
    if let Some(sp) = &s.fit.info.sparse {
        eprintln!(
            "model: sparse GP (VFE) on {} inducing points of {} labels, {}; ELBO {:.2}",
            sp.used, s.labeled, sp.reason, sp.elbo
        );
    }
    eprintln!(
        "picked {} of {} candidates ({} labeled, {} pending) with {} on {}; scored {:.0} candidates/s; wrote {}",
        selection.picks.len(),
        s.pool_size,
        s.labeled,
        s.pending,
        s.acquisition.name(),
        s.fit.kernel,
        s.candidates_per_second,
        a.out.display()
    );
    if let Some(j) = &s.joint {
        eprintln!("{}", joint_line(j));
    }
    Ok(())
}

/// `select --objectives`: a Pareto batch.
fn select_objectives(a: SelectArgs) -> Result<()> {
    use poolrank::multi::{run_select_objectives, MultiParams};
    anyhow::ensure!(
        a.model_file.is_none(),
        "--model: a saved model holds one objective; --objectives fits one GP per objective from --labels"
    );
    let labels_path = a.labels.clone().context("--objectives needs --labels")?;
    let pool = a.pool.spec();
    let spec = a.pool.labels(labels_path.clone(), &a.y_col);
    let mut set = report::Outputs::new()
        .input(&pool.path)
        .input(&labels_path)
        .inputs(pool.ids.as_ref())
        .inputs(a.pending.as_ref())
        .output(&a.out)
        .outputs(a.summary.as_ref())
        .check()?;
    pool_notes(&pool)?;
    let o = &a.objectives;
    let mut params = MultiParams::new(o.objectives.clone().expect("checked above"));
    params.acquisition = a.acq.pareto()?;
    params.beta = a.acq.beta;
    params.ref_point = o.ref_point.clone();
    params.constraints = o.constraint.clone();
    params.select = select_params(&a);
    a.run.apply(&mut params.select);
    params.check()?;
    let labels = poolrank::data::read_label_columns(&labels_path, &spec.id_col, &params.columns())?;
    let pending = IdList::read_or_empty(a.pending.as_deref())?;
    let selection = run_select_objectives(&params, &pool, &labels, &pending)?;
    let s = &selection.summary;
    report::write_pareto_batch_csv(&mut set, &a.out, &selection.picks, &s.columns)?;
    if let Some(path) = &a.summary {
        report::write_json(&mut set, path, s)?;
    }
    set.commit()?;
    eprintln!("backend: {}", s.backend_choice);
    for f in &s.fits {
        eprintln!(
            "model {}: {} on {} labels, signal_var {:.4}, noise {:.4}",
            f.column, f.fit.kernel, f.labeled, f.fit.signal_var, f.fit.noise
        );
    }
    if let Some(r) = &s.reference_point {
        eprintln!(
            "reference point ({}): {}",
            if s.reference_given {
                "given"
            } else {
                "from the labels"
            },
            r.iter()
                .map(|v| format!("{v}"))
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    if let Some(p) = s.best_p_feasible {
        eprintln!(
            "constraints {}: highest probability of feasibility {p:.3}",
            s.constraints.join(", ")
        );
    }
    eprintln!(
        "picked {} of {} candidates ({} labeled, {} for every objective, {} on the labeled front) with {} on {}; {}; scored {:.0} candidates/s; wrote {}",
        selection.picks.len(),
        s.pool_size,
        s.labeled,
        s.complete,
        s.front,
        s.acquisition,
        s.objectives.join(","),
        if s.shared_kernel_block {
            "one kernel block for every objective"
        } else {
            "one kernel block per objective"
        },
        s.candidates_per_second,
        a.out.display()
    );
    Ok(())
}

/// What the joint step of `thompson` and `qpo` did, with a warning when its samples reached
/// the shortlist's tail too often (after any growth).
pub(crate) fn joint_line(j: &poolrank::select::JointReport) -> String {
    if let Some(d) = j.prior_features {
        return format!(
            "joint posterior: {} pathwise sample(s) over all {} candidates ({d} random features in the prior draw)",
            j.samples, j.shortlist
        );
    }
    let mut line = format!(
        "joint posterior: {} sample(s) over a shortlist of {} ({} pool pass(es)); {:.1}% of the argmaxes on its last tenth",
        j.samples,
        j.shortlist,
        j.passes,
        100.0 * j.tail_share
    );
    if j.tail_share > poolrank::select::joint::TAIL_LIMIT {
        line += "\nwarning: over 1% of the argmaxes fell on the shortlist's last tenth, so candidates beyond it may have won some samples; give a longer --shortlist";
    }
    line
}
