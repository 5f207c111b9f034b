//! Shared pieces of Sora's fuzz targets (see `fuzz_targets/` and docs/fuzzing.md).
//!
//! The `model_dir` target reads a whole model directory from one input; [`pack`] and
//! [`unpack`] are that input format:
//!
//! ```text
//! === manifest.json
//! {"format": "sora-model", ...}
//! === model.safetensors
//! <bytes>
//! ```
//!
//! A line `=== NAME` opens a file; its bytes run to the next `\n=== ` or to the end of the
//! input. The separators are plain text, so a mutation inside a file leaves the other files
//! whole, and the fuzzer can add, drop, rename or duplicate files by editing those lines.

use std::path::Path;

/// What opens a file in the packed format.
const OPEN: &[u8] = b"=== ";
/// What ends a file and opens the next.
const NEXT: &[u8] = b"\n=== ";

/// The longest file name [`unpack`] keeps.
pub const MAX_NAME: usize = 64;

/// Packs `files` (name, bytes) into one input of the `model_dir` target.
pub fn pack<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (name, bytes)) in files.into_iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(OPEN);
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(bytes);
    }
    out
}

/// Splits an input into its files (name, bytes), in order. A file whose name is not a plain
/// file name ([`is_plain_name`]) is skipped, so nothing is ever written outside the directory;
/// bytes before the first `=== ` line are ignored.
pub fn unpack(data: &[u8]) -> Vec<(String, &[u8])> {
    let mut files = Vec::new();
    let mut rest = match data.strip_prefix(OPEN) {
        Some(rest) => rest,
        None => match find(data, NEXT) {
            Some(at) => &data[at + NEXT.len()..],
            None => return files,
        },
    };
    loop {
        let (section, next) = match find(rest, NEXT) {
            Some(at) => (&rest[..at], Some(&rest[at + NEXT.len()..])),
            None => (rest, None),
        };
        let (name, bytes) = match section.iter().position(|&b| b == b'\n') {
            Some(at) => (&section[..at], &section[at + 1..]),
            None => (section, &[][..]),
        };
        if let Ok(name) = std::str::from_utf8(name)
            && is_plain_name(name)
        {
            files.push((name.to_string(), bytes));
        }
        match next {
            Some(next) => rest = next,
            None => return files,
        }
    }
}

/// Whether `name` is a plain file name: 1 to [`MAX_NAME`] ASCII letters, digits, `.`, `_`
/// or `-`, not starting with `.`.
pub fn is_plain_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Writes the files of an input into `dir` (a later file of the same name replaces an
/// earlier one).
pub fn write_files(dir: &Path, files: &[(String, &[u8])]) -> std::io::Result<()> {
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpack_reads_what_pack_writes() {
        let files: [(&str, &[u8]); 3] = [
            ("manifest.json", b"{}\n"),
            ("empty", b""),
            ("model.safetensors", b"\x08\0\0\0\0\0\0\0{}      "),
        ];
        let packed = pack(files);
        let unpacked = unpack(&packed);
        let names: Vec<&str> = unpacked.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["manifest.json", "empty", "model.safetensors"]);
        for ((_, a), (_, b)) in files.iter().zip(&unpacked) {
            assert_eq!(a, b);
        }
    }

    #[test]
    fn names_that_leave_the_folder_are_skipped() {
        let unpacked = unpack(b"=== ../x\nA\n=== a/b\nB\n=== .hidden\nC\n=== ok\nD");
        assert_eq!(unpacked, [("ok".to_string(), &b"D"[..])]);
    }
}
