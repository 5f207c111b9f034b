//! Standard base64 (RFC 4648): the reports embed their charts with it, and the server reads
//! uploaded files sent in JSON with it.
//!
//! ```
//! use sora_jobs::base64::{decode, encode};
//!
//! assert_eq!(encode(b"foobar"), "Zm9vYmFy");
//! assert_eq!(decode("Zm9vYg==").as_deref(), Some(&b"foob"[..]));
//! assert_eq!(decode("Zm9v!"), None);
//! ```

/// Standard base64 (RFC 4648) with padding.
pub fn encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(TABLE[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (RFC 4648, with or without padding; white space ignored); `None`
/// for text that is not base64.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let symbols: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let data = match symbols.iter().position(|&c| c == b'=') {
        Some(at) if symbols[at..].iter().all(|&c| c == b'=') && symbols.len() - at <= 2 => {
            &symbols[..at]
        }
        Some(_) => return None,
        None => &symbols[..],
    };
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    for chunk in data.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors_round_trip() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(raw.as_bytes()), enc);
            assert_eq!(decode(enc).as_deref(), Some(raw.as_bytes()), "{enc}");
            assert_eq!(
                decode(enc.trim_end_matches('=')).as_deref(),
                Some(raw.as_bytes())
            );
        }
        for bad in ["Zg=a", "Z", "Zm9v!", "Zg==="] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
