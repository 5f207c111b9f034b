//! HTML and terminal rendering shared by the explanation reports: the one escaping function,
//! and tokens highlighted by their attributions.

/// Escapes text for HTML (`&`, `<`, `>`, `"`, `'`).
///
/// ```
/// assert_eq!(sora_jobs::explain::html::escape("<a href='x'>&</a>"),
///            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;");
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Tokens as HTML `<span>`s with a green (for the output) or red (against it) background whose
/// strength follows |score| relative to the largest; text escaped, the score in a `title`.
pub fn highlight_html(tokens: &[String], scores: &[f32]) -> String {
    let peak = scores.iter().fold(0.0f32, |m, s| m.max(s.abs())).max(1e-12);
    tokens
        .iter()
        .zip(scores)
        .map(|(t, s)| {
            let alpha = (s.abs() / peak).clamp(0.0, 1.0);
            let rgb = if *s >= 0.0 { "0,160,0" } else { "200,0,0" };
            format!(
                "<span style=\"background: rgba({rgb},{alpha:.2})\" title=\"{s:+.4}\">{}</span>",
                escape(t)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Tokens coloured for a terminal (ANSI 24-bit background): green for, red against the output,
/// stronger for larger |score|. Control characters in tokens are dropped.
pub fn highlight_terminal(tokens: &[String], scores: &[f32]) -> String {
    let peak = scores.iter().fold(0.0f32, |m, s| m.max(s.abs())).max(1e-12);
    tokens
        .iter()
        .zip(scores)
        .map(|(t, s)| {
            let level = (s.abs() / peak).clamp(0.0, 1.0);
            let v = (40.0 + 150.0 * level) as u8;
            let (r, g) = if *s >= 0.0 { (0, v) } else { (v, 0) };
            let clean: String = t.chars().filter(|c| !c.is_control()).collect();
            format!("\x1b[48;2;{r};{g};0m{clean}\x1b[0m")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A self-contained HTML page of explained rows (escaped): per row its prediction and
/// probabilities, then its columns as signed bars (largest |attribution| first), its tokens
/// highlighted, or its heat map as an inline SVG grid.
pub fn rows_document(method: &str, rows: &[super::ExplainedRow]) -> super::Document {
    use super::Attributions;
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Explanation</title>\
         <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}\
         table{{border-collapse:collapse}}td{{padding:2px 8px}}\
         .bar{{display:inline-block;height:0.8em}}</style></head><body>\n\
         <h1>Explanation</h1>\n<p>{}</p>\n",
        escape(method)
    );
    for row in rows {
        html.push_str(&format!(
            "<h2>Row {}: {}</h2>\n<p>explained: {}; probabilities: {}</p>\n",
            escape(&row.key),
            escape(&row.label),
            escape(&row.explained),
            row.probabilities
                .iter()
                .map(|p| format!("{p:.4}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        match &row.attributions {
            Attributions::Columns(columns) => {
                let peak = columns
                    .iter()
                    .fold(0.0f32, |m, c| m.max(c.attribution.abs()))
                    .max(1e-12);
                let mut sorted: Vec<_> = columns.iter().collect();
                sorted.sort_by(|a, b| b.attribution.abs().total_cmp(&a.attribution.abs()));
                html.push_str("<table>\n<tr><th>column</th><th>value</th><th>attribution</th><th></th></tr>\n");
                for c in sorted {
                    let width = 12.0 * c.attribution.abs() / peak;
                    let colour = if c.attribution >= 0.0 { "#2a2" } else { "#c22" };
                    html.push_str(&format!(
                        "<tr><td>{}</td><td>{}{}</td><td>{:+.4}</td>\
                         <td><span class=\"bar\" style=\"width:{width:.2}em;background:{colour}\"></span></td></tr>\n",
                        escape(&c.column),
                        escape(&c.value),
                        if c.imputed { " (imputed)" } else { "" },
                        c.attribution
                    ));
                }
                html.push_str("</table>\n");
            }
            Attributions::Tokens(tokens) => {
                let words: Vec<String> = tokens.iter().map(|t| t.token.clone()).collect();
                let scores: Vec<f32> = tokens.iter().map(|t| t.attribution).collect();
                html.push_str(&format!("<p>{}</p>\n", highlight_html(&words, &scores)));
            }
            Attributions::Map(map) => {
                let peak = map
                    .heat
                    .iter()
                    .fold(0.0f32, |m, v| m.max(v.abs()))
                    .max(1e-12);
                let cell = (240 / map.width.max(map.height).max(1)).max(2);
                html.push_str(&format!(
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\">",
                    cell * map.width,
                    cell * map.height
                ));
                for (i, v) in map.heat.iter().enumerate() {
                    let (y, x) = (i / map.width.max(1), i % map.width.max(1));
                    let level = (v.abs() / peak).clamp(0.0, 1.0);
                    let rgb = if *v >= 0.0 { "220,60,0" } else { "0,80,220" };
                    html.push_str(&format!(
                        "<rect x=\"{}\" y=\"{}\" width=\"{cell}\" height=\"{cell}\" fill=\"rgba({rgb},{level:.3})\"/>",
                        x * cell,
                        y * cell
                    ));
                }
                html.push_str("</svg>\n");
            }
        }
        if let Some(d) = row.delta {
            html.push_str(&format!("<p>completeness delta {d:+.5}</p>\n"));
        }
    }
    html.push_str("</body></html>\n");
    super::Document {
        extension: "html",
        bytes: html.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_signed() {
        let html = highlight_html(&["<b>".to_string(), "ok".to_string()], &[1.0, -0.5]);
        assert!(
            html.contains("&lt;b&gt;") && !html.contains("<b>"),
            "{html}"
        );
        assert!(html.contains("rgba(0,160,0,1.00)") && html.contains("rgba(200,0,0,0.50)"));
        let term = highlight_terminal(&["a\x1b".to_string()], &[1.0]);
        assert_eq!(term.matches('\x1b').count(), 2, "{term:?}");
    }
}
