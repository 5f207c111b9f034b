//! The text a language model learns from, and how it becomes tokens and back.

#[allow(unused_imports)]
use super::*;

/// Lines of text to learn from.
#[derive(Debug, Clone, PartialEq)]
pub struct Corpus {
    /// The lines, without their line breaks.
    pub lines: Vec<String>,
    /// Where they came from (a file, or `file:column`).
    pub source: String,
}

/// The largest text file a language model is trained on or evaluated with: 1 GiB.
pub const MAX_TEXT_BYTES: u64 = 1 << 30;

/// Reads a plain UTF-8 text file into lines (`\n` or `\r\n` line ends).
pub fn load_text(path: &Path) -> Result<Corpus> {
    let bytes = sora_core::weights::read_bounded(path, MAX_TEXT_BYTES).map_err(|source| {
        GenerateError::Io {
            file: path.to_path_buf(),
            source,
        }
    })?;
    let text = String::from_utf8(bytes).map_err(|e| GenerateError::NotUtf8 {
        file: path.to_path_buf(),
        valid_up_to: e.utf8_error().valid_up_to(),
    })?;
    Ok(Corpus {
        lines: text.lines().map(str::to_string).collect(),
        source: path.display().to_string(),
    })
}

/// Reads one column of a CSV file, one row per line (line breaks inside a field become
/// spaces).
pub fn load_csv_column(path: &Path, column: &str) -> Result<Corpus> {
    let table = Table::read_csv(path)?;
    let col = table
        .column_index(column)
        .ok_or_else(|| GenerateError::MissingColumn {
            file: table.source().to_string(),
            column: column.to_string(),
            found: table.headers().join(", "),
        })?;
    Ok(Corpus {
        lines: table
            .column(col)
            .map(|cell| cell.replace("\r\n", " ").replace(['\n', '\r'], " "))
            .collect(),
        source: format!("{}:{column}", table.source()),
    })
}

/// How text becomes tokens, and back.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Tokens {
    pub(super) kind: TokenKind,
    pub(super) words: Tokenizer,
}

impl Tokens {
    pub(super) fn new(kind: TokenKind, tokenizer: &TokenizerConfig) -> Result<Self> {
        Ok(Self {
            kind,
            words: Tokenizer::new(tokenizer.clone())?,
        })
    }

    /// The tokens of one line, without its line break.
    pub(super) fn line(&self, line: &str) -> Vec<String> {
        match self.kind {
            TokenKind::Char => line.chars().map(String::from).collect(),
            TokenKind::Word => self.words.tokenize(line),
        }
    }

    /// The tokens of text that may span lines: each line break is the line-break token.
    pub(super) fn text(&self, text: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                tokens.push(LINE_BREAK.to_string());
            }
            tokens.extend(self.line(line.strip_suffix('\r').unwrap_or(line)));
        }
        tokens
    }

    /// The text of `token` written after `previous`.
    pub(super) fn piece(&self, previous: Option<&str>, token: &str) -> String {
        match self.kind {
            TokenKind::Char => token.to_string(),
            TokenKind::Word => match previous {
                None | Some(LINE_BREAK) => token.to_string(),
                Some(_) if token == LINE_BREAK => token.to_string(),
                Some(_) => format!(" {token}"),
            },
        }
    }
}
