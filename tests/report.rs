//! `sora explain` end to end: terminal summary, the self-contained HTML report, and the report
//! rendered by headless Chromium (its screenshot is kept in `target/test-artifacts/`).
//! CI installs Chromium and sets `SORA_REQUIRE_CHROMIUM=1`, so the rendering check cannot skip
//! there.

use std::path::{Path, PathBuf};
use std::process::Command;

fn sora(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_sora"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "sora {args:?}:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
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

#[test]
fn explain_writes_a_report_that_renders() {
    let device = std::env::var("SORA_TEST_DEVICE").unwrap_or_else(|_| "flex".into());
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("heart");
    let model = model.to_str().unwrap();
    let data = "data/heart_cleveland/heart_cleveland.csv";
    sora(&[
        "train",
        "--data",
        data,
        "--target",
        "num",
        "--target-above",
        "0",
        "--progress",
        "quiet",
        "--out",
        model,
        "--device",
        &device,
    ]);
    let report = artifacts().join(format!("report-{device}.html"));
    // Rows 167 and 288 of the file hold the missing `ca` / `thal` cells.
    let out = sora(&[
        "explain",
        "--model",
        model,
        "--data",
        data,
        "--rows",
        "1-3,167,288",
        "--report",
        report.to_str().unwrap(),
        "--sanity-check",
        "--device",
        &device,
    ]);
    assert!(out.contains("row 1: predicted"), "{out}");
    assert!(out.contains("completeness delta"), "{out}");
    assert!(
        out.contains("sanity check: with re-initialised weights"),
        "{out}"
    );

    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "external assets"
    );
    assert_eq!(html.matches("<div class=\"row\">").count(), 5);
    assert!(
        html.contains("(imputed)"),
        "the imputed cells of rows 167 / 288 are marked"
    );
    assert!(
        html.contains("data:image/png;base64,iVBOR"),
        "embedded PNG charts"
    );
    // Global importance reads from the most important column down.
    let table = html
        .split("<th>mean drop</th>")
        .nth(1)
        .expect("a permutation table");
    let table = &table[..table.find("</table>").unwrap()];
    let drops: Vec<f64> = table
        .split("<td class=\"num\">")
        .skip(1)
        .step_by(2)
        .map(|cell| cell[..cell.find('<').unwrap()].parse().unwrap())
        .collect();
    assert_eq!(drops.len(), 13, "{table}");
    assert!(drops.windows(2).all(|w| w[0] >= w[1]), "{drops:?}");

    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("SORA_REQUIRE_CHROMIUM").is_none(),
            "SORA_REQUIRE_CHROMIUM is set but no chromium is installed"
        );
        eprintln!("chromium not installed: the rendering check is skipped");
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", report.display());
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
    for row in [
        "row 1: predicted",
        "row 2: predicted",
        "row 3: predicted",
        "row 167: predicted",
        "row 288: predicted",
    ] {
        assert!(dom.contains(row), "rendered DOM lacks {row:?}");
    }
    let shot = artifacts().join(format!("report-{device}.png"));
    let _ = std::fs::remove_file(&shot);
    let o = Command::new(browser)
        .args(flags)
        .arg(&user_data)
        .arg(format!("--screenshot={}", shot.display()))
        .args(["--window-size=1000,2400", &url])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 20_000,
        "a blank page would compress to far less: {} bytes",
        png.len()
    );
}
