//! A per-layer model summary, in the manner of Keras' `model.summary()`.

use std::fmt;

/// One row of a [`Summary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSummary {
    /// Path of the layer in the model (`head.hidden.0.linear`); parameter names extend it.
    pub name: String,
    /// Kind of the layer, named as in PyTorch (`Linear`, `ReLU`, `BatchNorm1d`, …).
    pub kind: String,
    /// Output shape of one sample, without the batch dimension.
    pub output_shape: Vec<usize>,
    /// Parameters the layer allocates, trainable or not (a batch norm's running mean and
    /// variance count here, as in Burn's `num_params` and Keras' summary).
    pub params: u64,
    /// Of `params`, those the optimizer updates.
    pub trainable: u64,
}

/// The layers of a model with their output shapes and parameter counts, inferred from a
/// checked spec without running (or allocating) the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Shape of one input sample, without the batch dimension.
    pub input_shape: Vec<usize>,
    /// One row per layer.
    pub layers: Vec<LayerSummary>,
    /// Sum of the rows' parameters.
    pub total_params: u64,
    /// Sum of the rows' trainable parameters.
    pub trainable_params: u64,
}

fn shape(dims: &[usize]) -> String {
    let inner: Vec<String> = std::iter::once("B".to_string())
        .chain(dims.iter().map(usize::to_string))
        .collect();
    format!("[{}]", inner.join(", "))
}

/// Formats `n` with thousands separators (`13,258`).
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<[String; 4]> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                [
                    i.to_string(),
                    format!("{} ({})", l.name, l.kind),
                    shape(&l.output_shape),
                    thousands(l.params),
                ]
            })
            .collect();
        let header = ["#", "Layer (type)", "Output shape", "Params"];
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line_len = widths.iter().sum::<usize>() + 3 * 3;
        let rule = "─".repeat(line_len);
        writeln!(f, "Input: {}", shape(&self.input_shape))?;
        writeln!(f, "{rule}")?;
        writeln!(
            f,
            "{:>w0$}   {:<w1$}   {:<w2$}   {:>w3$}",
            header[0],
            header[1],
            header[2],
            header[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )?;
        writeln!(f, "{rule}")?;
        for row in &rows {
            writeln!(
                f,
                "{:>w0$}   {:<w1$}   {:<w2$}   {:>w3$}",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3]
            )?;
        }
        writeln!(f, "{rule}")?;
        writeln!(f, "Total params: {}", thousands(self.total_params))?;
        writeln!(f, "Trainable params: {}", thousands(self.trainable_params))?;
        writeln!(
            f,
            "Non-trainable params: {}",
            thousands(self.total_params - self.trainable_params)
        )?;
        write!(
            f,
            "Size (float32): {:.1} KiB",
            self.total_params as f64 * 4.0 / 1024.0
        )
    }
}
