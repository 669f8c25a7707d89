//! The report as text (stdout) and as one self-contained HTML page with inline SVG plots (no
//! scripts, no network); a multi-objective report as both too ([`multi_text`], [`multi_html`]).

use std::fmt::Write as _;

use super::multi::{CrossSection, MultiReport, ObjectiveReport};
use super::stats::Bin;
use super::Report;

/// The text summary: one line per section and the verdict with its reasons.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let s = &r.setup;
    let _ = writeln!(
        out,
        "poolrank diagnose: {} candidates, {} labeled, {} on {}, batch {}{}",
        s.pool_size,
        s.labeled,
        s.acquisition.name(),
        r.model.fit.kernel,
        s.batch,
        if s.test > 0 {
            format!(", {} test candidates", s.test)
        } else {
            String::new()
        }
    );
    let _ = writeln!(out, "1. pool:      {}", r.pool.reading);
    let _ = writeln!(out, "2. spread:    {}", r.spread.reading);
    let _ = writeln!(out, "3. model:     {}", r.model.reading);
    for k in &r.model.kernels {
        let _ = writeln!(
            out,
            "             {:<9} on {:<17} CV R² {:>5.2}  Spearman {:>5.2}  NLPD {:>5.2}  95% coverage {:>3.0}%",
            k.kernel,
            k.features,
            k.r2,
            k.spearman,
            k.nlpd,
            100.0 * k.coverage95
        );
    }
    let _ = writeln!(out, "4. batch:     {}", r.batch.reading);
    if let Some(o) = &r.objective {
        let _ = writeln!(out, "5. objective: {}", o.reading);
    }
    let _ = writeln!(out, "verdict: {}", r.verdict.verdict.as_str());
    for reason in &r.verdict.reasons {
        let _ = writeln!(
            out,
            "  - {}: {} = {:.3} (threshold {:.3}); {}",
            reason.rule, reason.measure, reason.value, reason.threshold, reason.advice
        );
    }
    for w in &r.verdict.warnings {
        let _ = writeln!(
            out,
            "  warning {}: {} = {:.3}; {}",
            w.rule, w.measure, w.value, w.advice
        );
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 420.0;
const H: f64 = 220.0;
const PAD: f64 = 36.0;

/// A bar chart of `bins` with an x label.
pub fn histogram_svg(bins: &[Bin], xlabel: &str) -> String {
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img"><title>{}</title>"#,
        esc(xlabel)
    );
    let max = bins.iter().map(|b| b.count).max().unwrap_or(0).max(1) as f64;
    let (pw, ph) = (W - 2.0 * PAD, H - 2.0 * PAD);
    let bw = pw / bins.len().max(1) as f64;
    for (i, b) in bins.iter().enumerate() {
        let h = ph * b.count as f64 / max;
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#4477aa"><title>{:.3}–{:.3}: {}</title></rect>"##,
            PAD + bw * i as f64,
            PAD + ph - h,
            (bw - 1.0).max(0.5),
            h,
            b.lo,
            b.hi,
            b.count
        );
    }
    axes(
        &mut s,
        bins.first().map_or(0.0, |b| b.lo),
        bins.last().map_or(1.0, |b| b.hi),
        xlabel,
        &format!("count (max {max:.0})"),
    );
    s.push_str("</svg>");
    s
}

/// The calibration plot: observed against nominal coverage, with the diagonal.
pub fn calibration_svg(points: &[(f64, f64)]) -> String {
    let (pw, ph) = (W - 2.0 * PAD, H - 2.0 * PAD);
    let xy = |x: f64, y: f64| (PAD + pw * x, PAD + ph * (1.0 - y));
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img"><title>calibration</title>"#
    );
    let (a, b) = (xy(0.0, 0.0), xy(1.0, 1.0));
    let _ = write!(
        s,
        r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="4 3"/>"##,
        a.0, a.1, b.0, b.1
    );
    let path: Vec<String> = std::iter::once((0.0, 0.0))
        .chain(points.iter().copied())
        .map(|(x, y)| {
            let p = xy(x, y);
            format!("{:.1},{:.1}", p.0, p.1)
        })
        .collect();
    let _ = write!(
        s,
        r##"<polyline points="{}" fill="none" stroke="#cc3311" stroke-width="2"/>"##,
        path.join(" ")
    );
    for &(x, y) in points {
        let p = xy(x, y);
        let _ = write!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#cc3311"><title>nominal {x:.2}: observed {y:.2}</title></circle>"##,
            p.0, p.1
        );
    }
    axes(
        &mut s,
        0.0,
        1.0,
        "nominal coverage of the central interval",
        "observed coverage",
    );
    s.push_str("</svg>");
    s
}

/// Held-out predictions against labels.
pub fn scatter_svg(pairs: &[(f64, f64)]) -> String {
    let (pw, ph) = (W - 2.0 * PAD, H - 2.0 * PAD);
    let lo = pairs
        .iter()
        .flat_map(|p| [p.0, p.1])
        .fold(f64::INFINITY, f64::min);
    let hi = pairs
        .iter()
        .flat_map(|p| [p.0, p.1])
        .fold(f64::NEG_INFINITY, f64::max);
    let span = (hi - lo).max(1e-12);
    let xy = |x: f64, y: f64| {
        (
            PAD + pw * (x - lo) / span,
            PAD + ph * (1.0 - (y - lo) / span),
        )
    };
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img"><title>cross-validated predictions</title>"#
    );
    let (a, b) = (xy(lo, lo), xy(hi, hi));
    let _ = write!(
        s,
        r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="4 3"/>"##,
        a.0, a.1, b.0, b.1
    );
    for &(p, t) in pairs {
        let q = xy(t, p);
        let _ = write!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="#4477aa" fill-opacity="0.7"/>"##,
            q.0, q.1
        );
    }
    axes(&mut s, lo, hi, "label", "held-out prediction");
    s.push_str("</svg>");
    s
}

fn axes(s: &mut String, lo: f64, hi: f64, xlabel: &str, ylabel: &str) {
    let _ = write!(
        s,
        r##"<line x1="{PAD}" y1="{y}" x2="{x2}" y2="{y}" stroke="#333"/><line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{y}" stroke="#333"/><text x="{PAD}" y="{ty}" font-size="11">{lo:.3}</text><text x="{x2}" y="{ty}" font-size="11" text-anchor="end">{hi:.3}</text><text x="{cx}" y="{ly}" font-size="12" text-anchor="middle">{xl}</text><text x="12" y="{cy}" font-size="12" text-anchor="middle" transform="rotate(-90 12 {cy})">{yl}</text>"##,
        y = H - PAD,
        x2 = W - PAD,
        ty = H - PAD + 14.0,
        cx = W / 2.0,
        ly = H - 6.0,
        cy = H / 2.0,
        xl = esc(xlabel),
        yl = esc(ylabel),
    );
}

fn row(out: &mut String, name: &str, value: String) {
    let _ = write!(
        out,
        "<tr><th>{}</th><td>{}</td></tr>",
        esc(name),
        esc(&value)
    );
}

/// The page's head and the opening of its body.
fn page_start(o: &mut String) {
    o.push_str(r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>poolrank diagnose</title><style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.2em .6em;text-align:left;font-size:.9em}.reading{background:#f4f4f4;padding:.5em;border-left:4px solid #4477aa}.verdict{font-size:1.4em;font-weight:bold}svg{margin:.3em}</style></head><body>"#);
}

/// The verdict word in its colour.
fn verdict_html(o: &mut String, w: super::verdict::Word) {
    let colour = match w {
        super::verdict::Word::LikelyBeatsRandom => "#228833",
        super::verdict::Word::LikelyRandomLike => "#cc3311",
        super::verdict::Word::Uncertain => "#ccbb44",
    };
    let _ = write!(
        o,
        "<p class=\"verdict\" style=\"color:{colour}\">{}</p>",
        w.as_str()
    );
}

/// The HTML page.
pub fn html(r: &Report) -> String {
    let mut o = String::new();
    page_start(&mut o);
    o.push_str("<h1>Is active learning likely to beat random here?</h1>");
    report_html(&mut o, r, 2);
    o.push_str("</body></html>\n");
    o
}

/// The body of one report: verdict, setup and sections, the sections' headings at level `h`.
fn report_html(o: &mut String, r: &Report, h: u8) {
    let s = &r.setup;
    verdict_html(o, r.verdict.verdict);
    o.push_str("<ul>");
    for reason in &r.verdict.reasons {
        let _ = write!(
            o,
            "<li><b>{}</b>: {} = {:.3} (threshold {:.3}). {}</li>",
            esc(reason.rule),
            esc(&reason.measure),
            reason.value,
            reason.threshold,
            esc(&reason.advice)
        );
    }
    for w in &r.verdict.warnings {
        let _ = write!(
            o,
            "<li>warning, <b>{}</b>: {} = {:.3}. {}</li>",
            esc(w.rule),
            esc(&w.measure),
            w.value,
            esc(&w.advice)
        );
    }
    o.push_str("</ul><table>");
    row(o, "pool", s.pool.display().to_string());
    row(o, "features", s.features.to_string());
    row(
        o,
        "candidates / labeled / test",
        format!("{} / {} / {}", s.pool_size, s.labeled, s.test),
    );
    row(
        o,
        "acquisition, batch",
        format!("{}, {}", s.acquisition.name(), s.batch),
    );
    row(
        o,
        "seed, backend, threads",
        format!("{}, {}, {}", s.seed, s.backend, s.threads),
    );
    row(
        o,
        "seconds (locate, model, score, total)",
        format!(
            "{:.2}, {:.2}, {:.2}, {:.2}",
            r.seconds.locate, r.seconds.model, r.seconds.score, r.seconds.total
        ),
    );
    o.push_str("</table>");

    let p = &r.pool;
    let _ = write!(
        o,
        "<h{h}>1. Pool</h{h}><p class=\"reading\">{}</p><table>",
        esc(&p.reading)
    );
    row(o, "similarity", p.similarity.clone());
    row(
        o,
        "nearest-neighbour sample",
        format!("{} candidates (seeded; --nn-sample)", p.sample),
    );
    row(
        o,
        "nearest-neighbour similarity (q05 / median / q95)",
        format!(
            "{:.3} / {:.3} / {:.3}",
            p.nn_similarity.q05, p.nn_similarity.median, p.nn_similarity.q95
        ),
    );
    row(
        o,
        "exact / near duplicates",
        format!(
            "{:.1}% / {:.1}%",
            100.0 * p.exact_duplicates,
            100.0 * p.near_duplicates
        ),
    );
    row(
        o,
        "coverage: similarity to nearest label (q05 / median / q95)",
        format!(
            "{:.3} / {:.3} / {:.3}",
            p.coverage.q05, p.coverage.median, p.coverage.q95
        ),
    );
    row(
        o,
        "outliers",
        format!(
            "{:.2}% (similarity to the nearest label < {:.3}, half the median)",
            100.0 * p.outlier_share,
            p.outlier_coverage_below
        ),
    );
    o.push_str("</table>");
    o.push_str(&histogram_svg(
        &p.nn_histogram,
        "nearest-neighbour similarity within the pool",
    ));
    o.push_str(&histogram_svg(
        &p.coverage_histogram,
        "similarity to the nearest labeled candidate",
    ));

    let sp = &r.spread;
    let _ = write!(
        o,
        "<h{h}>2. Spread of informativeness</h{h}><p class=\"reading\">{}</p><table>",
        esc(&sp.reading)
    );
    row(
        o,
        "score (q05 / median / q95 / max)",
        format!(
            "{:.3} / {:.3} / {:.3} / {:.3}",
            sp.scores.q05, sp.scores.median, sp.scores.q95, sp.scores.max
        ),
    );
    row(
        o,
        "coefficient of variation",
        format!("{:.3}", sp.coefficient_of_variation),
    );
    row(
        o,
        "batch − median, in predictive sd",
        sp.batch_gap_sd.map_or("—".into(), |v| format!("{v:.2}")),
    );
    row(
        o,
        "within noise of the best",
        match (sp.within_noise_of_best, sp.within_noise_share) {
            (Some(c), Some(f)) => format!(
                "{c:.0} candidates ({:.2}%), noise sd {:.3}",
                100.0 * f,
                sp.noise_sd
            ),
            _ => "—".into(),
        },
    );
    o.push_str("</table>");
    o.push_str(&histogram_svg(
        &sp.histogram,
        &format!("{} score (standardised)", sp.acquisition),
    ));

    let m = &r.model;
    let _ = write!(
        o,
        "<h{h}>3. Model</h{h}><p class=\"reading\">{}</p><table>",
        esc(&m.reading)
    );
    row(
        o,
        "kernel, signal var, noise, lengthscale",
        format!(
            "{}, {:.4}, {:.4}, {}",
            m.fit.kernel,
            m.fit.signal_var,
            m.fit.noise,
            m.fit.lengthscale.map_or("—".into(), |l| format!("{l:.4}"))
        ),
    );
    row(
        o,
        "at a bound",
        if m.fit.at_bound.is_empty() {
            "none".into()
        } else {
            m.fit.at_bound.join(", ")
        },
    );
    row(
        o,
        "train R² / CV R²",
        format!("{:.3} / {:.3}", m.fit.train_r2, m.cv.r2),
    );
    row(
        o,
        "standardised residuals: mean, sd",
        format!("{:.3}, {:.3}", m.cv.z_mean, m.cv.z_sd),
    );
    row(
        o,
        "coverage of 68% / 95% intervals",
        format!(
            "{:.1}% / {:.1}%",
            100.0 * m.cv.coverage68,
            100.0 * m.cv.coverage95
        ),
    );
    row(o, "mean NLPD (standardised)", format!("{:.3}", m.cv.nlpd));
    row(
        o,
        "Spearman(|error|, sd)",
        format!("{:.3}", m.cv.sd_ranks_errors),
    );
    o.push_str("</table><table><tr><th>kernel</th><th>features</th><th>CV R²</th><th>Spearman</th><th>NLPD</th><th>95% coverage</th></tr>");
    for k in &m.kernels {
        let _ = write!(o, "<tr><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.1}%</td></tr>", k.kernel, esc(&k.features), k.r2, k.spearman, k.nlpd, 100.0 * k.coverage95);
    }
    let _ = write!(
        o,
        "</table><p>recommended kernel: <b>{}</b></p>",
        m.recommended_kernel
    );
    o.push_str(&calibration_svg(&m.cv.calibration));
    o.push_str(&scatter_svg(&m.cv.pairs));

    let b = &r.batch;
    let _ = write!(
        o,
        "<h{h}>4. The batch</h{h}><p class=\"reading\">{}</p><table>",
        esc(&b.reading)
    );
    row(
        o,
        "similarity to labels: batch / pool",
        format!("{:.3} / {:.3}", b.coverage_batch, b.coverage_pool),
    );
    row(
        o,
        "local density: batch / pool",
        format!("{:.3} / {:.3}", b.density_batch, b.density_pool),
    );
    row(
        o,
        "outliers: batch / pool",
        format!(
            "{:.1}% / {:.1}%",
            100.0 * b.outlier_share,
            100.0 * b.pool_outlier_share
        ),
    );
    row(
        o,
        "predicted value gap (pool sd), sd ratio",
        format!("{:+.2}, {:.2}", b.mean_gap, b.sd_ratio),
    );
    o.push_str("</table><table><tr><th>rank</th><th>id</th><th>score</th><th>mean</th><th>sd</th><th>coverage</th><th>outlier</th></tr>");
    for pk in &b.picks {
        let _ = write!(o, "<tr><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td></tr>", pk.rank, esc(&pk.id), pk.score, pk.mean, pk.sd, pk.coverage, if pk.outlier { "yes" } else { "" });
    }
    o.push_str("</table>");
    if let Some(ob) = &r.objective {
        let _ = write!(
            o,
            "<h{h}>5. Objective</h{h}><p class=\"reading\">{}</p>",
            esc(&ob.reading)
        );
        o.push_str(&histogram_svg(
            &ob.test_nn_histogram,
            "test candidates: similarity to the nearest pool candidate",
        ));
    }
}

/// The cross-objective section as text lines.
fn cross_text(out: &mut String, c: &CrossSection) {
    let _ = writeln!(out, "across objectives: {}", c.reading);
    for p in &c.pairs {
        let _ = writeln!(
            out,
            "  {} ~ {}: Spearman {} on {} rows labeled for both",
            p.a,
            p.b,
            p.spearman.map_or("—".into(), |v| format!("{v:.2}")),
            p.rows
        );
    }
    let _ = writeln!(
        out,
        "  front: {} of {} rows labeled for every objective on the first non-dominated layer",
        c.front, c.complete
    );
}

/// The text summary of a multi-objective report: the cross-objective section and the overall
/// verdict, then each objective's [`text`] under a heading naming it.
pub fn multi_text(m: &MultiReport) -> String {
    let mut out = String::new();
    let names: Vec<String> = m.objectives.iter().map(ObjectiveReport::name).collect();
    let _ = writeln!(
        out,
        "poolrank diagnose: {} objectives ({}) from {}",
        names.len(),
        names.join(", "),
        m.labels.display()
    );
    cross_text(&mut out, &m.cross);
    let _ = writeln!(out, "overall verdict: {}", m.verdict.verdict.as_str());
    let _ = writeln!(out, "  {}", m.verdict.reading);
    for (o, name) in m.objectives.iter().zip(&names) {
        let _ = writeln!(out, "\n== objective {name} ==");
        out.push_str(&text(&o.report));
    }
    out
}

/// The HTML page of a multi-objective report: the overall verdict and the cross-objective
/// section, then each objective's report (as [`html`] writes it) under a heading naming it.
pub fn multi_html(m: &MultiReport) -> String {
    let mut o = String::new();
    page_start(&mut o);
    o.push_str("<h1>Is active learning likely to beat random here?</h1>");
    verdict_html(&mut o, m.verdict.verdict);
    let _ = write!(
        o,
        "<p class=\"reading\">{}</p><h2>Across objectives</h2><p class=\"reading\">{}</p><table><tr><th>objectives</th><th>Spearman ρ (maximisation scale)</th><th>rows labeled for both</th></tr>",
        esc(&m.verdict.reading),
        esc(&m.cross.reading)
    );
    for p in &m.cross.pairs {
        let _ = write!(
            o,
            "<tr><td>{} ~ {}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.a),
            esc(&p.b),
            p.spearman.map_or("—".into(), |v| format!("{v:.3}")),
            p.rows
        );
    }
    o.push_str("</table><table>");
    row(&mut o, "labels", m.labels.display().to_string());
    row(
        &mut o,
        "rows labeled for every objective",
        m.cross.complete.to_string(),
    );
    row(
        &mut o,
        "on the first non-dominated layer",
        m.cross.front.to_string(),
    );
    row(&mut o, "seconds", format!("{:.2}", m.seconds));
    o.push_str("</table>");
    for r in &m.objectives {
        let _ = write!(o, "<h2>Objective {}</h2>", esc(&r.name()));
        report_html(&mut o, &r.report, 3);
    }
    o.push_str("</body></html>\n");
    o
}
