//! The model card (`sora train --report`, `sora report DIR`): every section a directory has,
//! its numbers those of the directory's files, importance bars largest first, every piece of
//! text escaped (a column named with markup, a NOTICE with a script), the charts inline, and
//! the page rendered by headless Chromium (its screenshot kept in `target/test-artifacts/`).
//! CI installs Chromium and sets `SORA_REQUIRE_CHROMIUM=1`, so the rendering check cannot skip
//! there.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::media::{bars, tones};
use common::{device, fails, ok};
use serde_json::Value;

const HEART: &str = "data/heart_cleveland/heart_cleveland.csv";
/// The heart data's `chol` column, renamed with markup in it.
const MARKED: &str = "chol<b>&mg";
const MARKED_ESCAPED: &str = "chol&lt;b&gt;&amp;mg";

fn json_file(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// The heading of section `id`, as the card writes it.
fn heading(id: &str, title: &str) -> String {
    format!("<h2 id=\"{id}\">{title}</h2>")
}

/// The cells of each body row of the table that opens with `open` (a header row, if any,
/// has no `<td>` and is left out).
fn rows(html: &str, open: &str) -> Vec<Vec<String>> {
    let start = html.find(open).unwrap_or_else(|| panic!("no table {open}"));
    let body = &html[start..];
    let body = &body[..body.find("</table>").unwrap()];
    body.split("<tr>")
        .skip(1)
        .filter(|row| row.contains("<td"))
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let cell = &cell[cell.find('>').unwrap() + 1..];
                    cell[..cell.find("</td>").unwrap()].to_string()
                })
                .collect()
        })
        .collect()
}

/// The column names and values of an importance table, checked to be largest first.
fn importance(html: &str, id: &str) -> Vec<(String, f64)> {
    let listed: Vec<(String, f64)> =
        rows(html, &format!("<table class=\"importance\" id=\"{id}\">"))
            .into_iter()
            .map(|r| (r[0].clone(), r[1].parse().unwrap()))
            .collect();
    let mut sorted = listed.clone();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
    assert_eq!(listed, sorted, "{id}: columns listed largest first");
    listed
}

/// A copy of the heart data, `chol` renamed to [`MARKED`], with its NOTICE beside it.
fn marked_heart(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(HEART).unwrap();
    let (header, body) = text.split_once('\n').unwrap();
    assert!(header.split(',').any(|c| c == "chol"), "{header}");
    let header: Vec<&str> = header
        .split(',')
        .map(|c| if c == "chol" { MARKED } else { c })
        .collect();
    let csv = dir.join("heart.csv");
    std::fs::write(&csv, format!("{}\n{body}", header.join(","))).unwrap();
    std::fs::copy("data/heart_cleveland/NOTICE", dir.join("NOTICE")).unwrap();
    csv
}

/// Renders `page` in headless Chromium: its DOM must hold `texts` and no `<b>` element (the
/// column name's markup stays text); its screenshot (kept as `name`) must be a page of many
/// colours, not a blank one.
fn render(page: &Path, name: &str, texts: &[&str]) {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("SORA_REQUIRE_CHROMIUM").is_none(),
            "SORA_REQUIRE_CHROMIUM is set but no chromium is installed"
        );
        eprintln!("chromium not installed: the rendering check is skipped");
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.display());
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let user_data = format!("--user-data-dir={}", profile.path().display());
    let dom = Command::new(browser)
        .args(flags)
        .arg(&user_data)
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    for text in texts {
        assert!(dom.contains(text), "rendered DOM lacks {text:?}");
    }
    assert!(!dom.contains("<b>"), "the column name became markup");
    let shot = artifacts().join(name);
    let _ = std::fs::remove_file(&shot);
    let (w, h) = (1000, 3000);
    let o = Command::new(browser)
        .args(flags)
        .arg(&user_data)
        .arg(format!("--screenshot={}", shot.display()))
        .args([&format!("--window-size={w},{h}"), &url])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let png = image::open(&shot).unwrap().to_rgb8();
    assert_eq!((png.width(), png.height()), (w, h));
    // Text, tables and charts: many colours, and far from all white.
    let mut colours: Vec<[u8; 3]> = png.pixels().map(|p| p.0).collect();
    let white = colours.iter().filter(|c| **c == [255, 255, 255]).count();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() > 200, "{} colours", colours.len());
    assert!(
        (white as f64) < 0.97 * f64::from(w * h),
        "{white} of {} pixels white",
        w * h
    );
}

#[test]
fn train_report_writes_every_section_escaped_and_it_renders() {
    let root = tempfile::tempdir().unwrap();
    let csv = marked_heart(root.path());
    let model = root.path().join("heart");
    let dev = device();
    let card = artifacts().join(format!("card-{dev}.html"));
    let _ = std::fs::remove_file(&card);
    let out = ok(&[
        "train",
        "--data",
        csv.to_str().unwrap(),
        "--target",
        "num",
        "--target-above",
        "0",
        "--threshold",
        "f1",
        "--coverage",
        "0.9",
        "--progress",
        "quiet",
        "--device",
        &dev,
        "--out",
        model.to_str().unwrap(),
        "--report",
        card.to_str().unwrap(),
    ]);
    assert!(out.contains(&format!("wrote {}", card.display())), "{out}");
    let html = std::fs::read_to_string(&card).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    for (id, title) in [
        ("data", "Data summary"),
        ("model", "Pipeline and model"),
        ("metrics", "Metrics"),
        ("confusion", "Confusion matrix"),
        ("curves", "Learning curves"),
        ("calibration", "Calibration"),
        ("threshold", "Decision threshold"),
        ("conformal", "Conformal prediction"),
        ("importance", "Global importance"),
        ("sanity", "Sanity check"),
        ("licence", "Data licence"),
    ] {
        assert!(html.contains(&heading(id, title)), "no section {title}");
    }
    // Sections the directory has nothing for are left out.
    assert!(!html.contains("id=\"cv\"") && !html.contains("id=\"ensemble\""));
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "external assets"
    );
    // Learning curves, reliability diagram, trade-off curve, two importance charts.
    assert_eq!(html.matches("src=\"data:image/png;base64,iVBOR").count(), 5);

    // Every piece of text escaped: the column's markup never reaches the page as markup.
    assert!(
        !html.contains(MARKED) && !html.contains("<b>"),
        "raw markup"
    );
    assert!(html.matches(MARKED_ESCAPED).count() >= 4, "{html}");

    // The numbers are the directory's.
    let metrics = json_file(&model.join("metrics.json"));
    let accuracy = metrics["accuracy"].as_f64().unwrap();
    let low = metrics["intervals"]["accuracy"]["low"].as_f64().unwrap();
    let scores = rows(&html, "<table class=\"scores\">");
    assert_eq!(scores[0][0], "accuracy");
    assert_eq!(scores[0][1], format!("{accuracy:.4}"));
    assert!(
        scores[0][2].starts_with(&format!("[{low:.4}, ")),
        "{scores:?}"
    );
    let confusion = rows(&html, "<table class=\"confusion\">");
    let expected: Vec<Vec<String>> = metrics["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, row)| {
            std::iter::once(i.to_string())
                .chain(row.as_array().unwrap().iter().map(|v| v.to_string()))
                .collect()
        })
        .collect();
    assert_eq!(confusion, expected);
    let decision = json_file(&model.join("decision.json"));
    let threshold = decision["threshold"]["threshold"].as_f64().unwrap();
    assert!(html.contains(&format!("≥ {threshold:.4}")), "threshold");
    let ece = decision["test"]["ece"][1].as_f64().unwrap();
    assert!(html.contains(&format!("{ece:.4}")), "ECE after calibration");
    let coverage = decision["test"]["coverage"].as_f64().unwrap();
    assert!(html.contains(&format!("{coverage:.4}")), "test coverage");
    let history = json_file(&model.join("history.json"));
    let best = history["best_epoch"].as_u64().unwrap();
    assert!(html.contains(&format!("Epoch kept: {best}")), "best epoch");

    // Global importance per raw column, largest first, on the training file.
    let permutation = importance(&html, "permutation");
    let attribution = importance(&html, "attribution");
    for listed in [&permutation, &attribution] {
        assert_eq!(listed.len(), 13);
        assert!(listed.iter().any(|(c, _)| c == MARKED_ESCAPED));
    }
    assert!(attribution.iter().all(|(_, v)| *v >= 0.0));
    assert!(html.contains("over all 303 rows"), "every row explained");
    assert!(html.contains("the attributions change by"), "sanity check");
    // The licence beside the training file.
    assert!(html.contains("Cleveland Clinic Foundation"), "NOTICE");

    render(
        &card,
        &format!("card-{dev}.png"),
        &[
            "Model card: heart",
            "Global importance",
            "Data licence",
            MARKED_ESCAPED,
        ],
    );
}

#[test]
fn report_of_a_cross_validated_model_shows_its_folds() {
    let root = tempfile::tempdir().unwrap();
    let model = root.path().join("cv");
    let model_s = model.to_str().unwrap();
    ok(&[
        "train",
        "--data",
        HEART,
        "--target",
        "num",
        "--target-above",
        "0",
        "--cv",
        "3",
        "--progress",
        "quiet",
        "--device",
        &device(),
        "--out",
        model_s,
    ]);
    let card = root.path().join("card.html");
    let out = ok(&["report", model_s, "--out", card.to_str().unwrap()]);
    assert!(out.contains("wrote"), "{out}");
    let html = std::fs::read_to_string(&card).unwrap();
    assert!(html.contains(&heading("cv", "Cross-validation")));
    // Refitted on every example: no test part, so no test metrics; the confusion matrix is
    // the folds' (every example once).
    assert!(!html.contains("id=\"metrics\""));
    let folds = rows(&html, "<table class=\"cv\">");
    assert_eq!(folds.len(), 4, "3 folds and mean ± sd");
    let cv = json_file(&model.join("cv.json"));
    let summary = cv["summary"].as_array().unwrap();
    for (i, m) in summary.iter().enumerate() {
        let (mean, sd) = (m["mean"].as_f64().unwrap(), m["sd"].as_f64().unwrap());
        assert_eq!(folds[3][3 + i], format!("{mean:.4} ± {sd:.4}"), "{m}");
    }
    let confusion = rows(&html, "<table class=\"confusion\">");
    let total: usize = confusion
        .iter()
        .flat_map(|r| r[1..].iter().map(|v| v.parse::<usize>().unwrap()))
        .sum();
    assert_eq!(total, 303);
    // Without data there is no importance; the card says what would give it.
    assert!(html.contains("Global importance needs data"), "{html}");
    assert!(
        html.contains("Cleveland Clinic Foundation"),
        "NOTICE beside the training file"
    );
}

#[test]
fn report_of_image_and_audio_models_has_the_sections_that_apply() {
    let root = tempfile::tempdir().unwrap();
    let dev = device();
    for (medium, per_class, extra) in [
        ("bars", 40, &[][..]),
        ("tones", 24, &["--clip-seconds", "0.25"][..]),
    ] {
        let data = root.path().join(medium);
        match medium {
            "bars" => bars(&data, per_class, 1),
            _ => tones(&data, per_class, 2),
        }
        std::fs::write(
            data.join("NOTICE"),
            format!("{medium}: made by tests/common/media.rs <script>alert(1)</script>\n"),
        )
        .unwrap();
        let model = root.path().join(format!("{medium}-model"));
        let (data_s, model_s) = (data.to_str().unwrap(), model.to_str().unwrap());
        let mut args = vec![
            "train",
            "--data",
            data_s,
            "--out",
            model_s,
            "--epochs",
            "12",
            "--seed",
            "3",
            "--progress",
            "quiet",
            "--device",
            &dev,
        ];
        args.extend_from_slice(extra);
        ok(&args);
        let card = artifacts().join(format!("card-{medium}-{dev}.html"));
        ok(&[
            "report",
            model_s,
            "--data",
            data_s,
            "--out",
            card.to_str().unwrap(),
            "--device",
            &dev,
        ]);
        let html = std::fs::read_to_string(&card).unwrap();
        for (id, title) in [
            ("data", "Data summary"),
            ("model", "Pipeline and model"),
            ("metrics", "Metrics"),
            ("confusion", "Confusion matrix"),
            ("curves", "Learning curves"),
            ("licence", "Data licence"),
        ] {
            assert!(html.contains(&heading(id, title)), "{medium}: no {title}");
        }
        // Calibration is on by default: fitted, or the card says why not.
        if model.join("decision.json").is_file() {
            assert!(
                html.contains(&heading("calibration", "Calibration")),
                "{medium}"
            );
        }
        // Per-column importance is for tables.
        assert!(!html.contains("id=\"importance\"") && !html.contains("id=\"sanity\""));
        assert!(
            html.contains("src=\"data:image/png;base64,iVBOR"),
            "{medium}: curves"
        );
        // The class balance of the data given: every sample of both classes.
        let balance = rows(&html, "<table class=\"balance\">");
        let given = balance.last().unwrap().last().unwrap().clone();
        assert_eq!(given, (2 * per_class).to_string(), "{medium}: {balance:?}");
        // The NOTICE beside the data, escaped.
        assert!(
            html.contains("made by tests/common/media.rs &lt;script&gt;"),
            "{medium}"
        );
        assert!(!html.contains("<script>"), "{medium}: raw markup");
    }
}

#[test]
fn bad_report_targets_are_refused_before_any_work() {
    let root = tempfile::tempdir().unwrap();
    let e = fails(&["report", root.path().to_str().unwrap()]);
    assert!(e.contains("not a Sora model directory"), "{e}");
    let model = root.path().join("never");
    let nowhere = root.path().join("no/such/folder/card.html");
    let e = fails(&[
        "train",
        "--data",
        HEART,
        "--target",
        "num",
        "--progress",
        "quiet",
        "--out",
        model.to_str().unwrap(),
        "--report",
        nowhere.to_str().unwrap(),
    ]);
    assert!(e.contains("does not exist"), "{e}");
    assert!(!model.exists(), "refused before training");
}
