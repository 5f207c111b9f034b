//! The linear reference of text classifiers.

use std::collections::HashMap;

use sora_text::tokenize::{Tokenizer, TokenizerConfig};

use super::{Result, TextData};

/// Accuracy of the linear reference on a split: TF-IDF over word 1–2-grams of the default
/// tokenizer (vocabulary and IDF from `train` only; sublinear term frequency `1 + ln tf`,
/// smoothed IDF `ln((1 + n) / (1 + df)) + 1`, L2-normalised rows) and a multinomial logistic
/// regression with L2 penalty `‖W‖² / (2C)` on the summed log-loss (scikit-learn's `C`),
/// fitted by Nesterov-accelerated full-batch gradient descent until the gradient's norm is
/// below `1e-6` (or 5,000 iterations).
///
/// Returns the test predictions (class indices).
pub fn tfidf_logistic(
    train: &TextData,
    test: &TextData,
    n_classes: usize,
    c: f64,
) -> Result<Vec<usize>> {
    let tokenizer = Tokenizer::new(TokenizerConfig::default())?;
    let grams = |text: &str| -> Vec<String> {
        let words = tokenizer.tokenize(text);
        let mut out = words.clone();
        out.extend(words.windows(2).map(|w| format!("{} {}", w[0], w[1])));
        out
    };
    let train_grams: Vec<Vec<String>> = train.texts.iter().map(|t| grams(t)).collect();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut df: Vec<f64> = Vec::new();
    for doc in &train_grams {
        let mut seen = std::collections::HashSet::new();
        for g in doc {
            if seen.insert(g.as_str()) {
                let next = index.len();
                let id = *index.entry(g.clone()).or_insert(next);
                if id == df.len() {
                    df.push(0.0);
                }
                df[id] += 1.0;
            }
        }
    }
    let n = train.len() as f64;
    let idf: Vec<f64> = df
        .iter()
        .map(|&d| ((1.0 + n) / (1.0 + d)).ln() + 1.0)
        .collect();
    let vectorize = |doc: &[String]| -> Vec<(usize, f64)> {
        let mut tf: HashMap<usize, f64> = HashMap::new();
        for g in doc {
            if let Some(&id) = index.get(g) {
                *tf.entry(id).or_default() += 1.0;
            }
        }
        let mut row: Vec<(usize, f64)> = tf
            .into_iter()
            .map(|(id, t)| (id, (1.0 + t.ln()) * idf[id]))
            .collect();
        row.sort_unstable_by_key(|&(id, _)| id);
        let norm = row.iter().map(|(_, v)| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|(_, v)| *v /= norm);
        }
        row
    };
    let x_train: Vec<Vec<(usize, f64)>> = train_grams.iter().map(|d| vectorize(d)).collect();
    let d = index.len();
    let k = n_classes;
    // Weights `[d + 1, k]` (the last row is the unpenalised intercept); objective is the mean
    // log-loss plus `‖W‖² / (2 C n)`.
    let lambda = 1.0 / (c * n);
    let logits = |w: &[f64], row: &[(usize, f64)]| -> Vec<f64> {
        let mut z: Vec<f64> = w[d * k..].to_vec();
        for &(j, v) in row {
            for (zc, wc) in z.iter_mut().zip(&w[j * k..(j + 1) * k]) {
                *zc += v * wc;
            }
        }
        z
    };
    let gradient = |w: &[f64]| -> Vec<f64> {
        let mut g = vec![0.0; (d + 1) * k];
        for (row, &label) in x_train.iter().zip(&train.labels) {
            let mut p = logits(w, row);
            let max = p.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            p.iter_mut().for_each(|z| *z = (*z - max).exp());
            let sum: f64 = p.iter().sum();
            p.iter_mut().for_each(|z| *z /= sum);
            p[label] -= 1.0;
            for &(j, v) in row {
                for (gc, pc) in g[j * k..(j + 1) * k].iter_mut().zip(&p) {
                    *gc += v * pc / n;
                }
            }
            for (gc, pc) in g[d * k..].iter_mut().zip(&p) {
                *gc += pc / n;
            }
        }
        for (gc, wc) in g[..d * k].iter_mut().zip(&w[..d * k]) {
            *gc += lambda * wc;
        }
        g
    };
    // Rows have unit norm (plus the intercept's 1), so the Hessian of the mean softmax loss
    // is bounded by 0.5 · 2 = 1; the penalty adds λ.
    let step = 1.0 / (1.0 + lambda);
    let mut w = vec![0.0; (d + 1) * k];
    let mut y = w.clone();
    let mut t = 1.0f64;
    for _ in 0..5000 {
        let g = gradient(&y);
        if g.iter().map(|v| v * v).sum::<f64>().sqrt() < 1e-6 {
            w = y;
            break;
        }
        let next: Vec<f64> = y.iter().zip(&g).map(|(yi, gi)| yi - step * gi).collect();
        let t_next = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
        let momentum = (t - 1.0) / t_next;
        y = next
            .iter()
            .zip(&w)
            .map(|(n, o)| n + momentum * (n - o))
            .collect();
        w = next;
        t = t_next;
    }
    Ok(test
        .texts
        .iter()
        .map(|text| {
            let z = logits(&w, &vectorize(&grams(text)));
            (0..k).max_by(|&a, &b| z[a].total_cmp(&z[b])).unwrap_or(0)
        })
        .collect())
}
