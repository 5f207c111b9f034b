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
