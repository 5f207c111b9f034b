//! Attribution maps drawn over their images, as PNG.

use std::path::Path;

use image::{ImageFormat, Rgb, RgbImage};

use crate::{ExplainError, Result};

/// One image with the map to draw over it.
#[derive(Debug, Clone, Copy)]
pub struct Overlay<'a> {
    /// The image, `[channels, height, width]` row-major (1 or 3 channels, any range: it is
    /// stretched to full contrast for display).
    pub image: &'a [f32],
    /// Channels of the image.
    pub channels: usize,
    /// Height of the image and of the map.
    pub height: usize,
    /// Width of the image and of the map.
    pub width: usize,
    /// The map, `[height, width]` row-major: Grad-CAM upsampled to the image, or a per-pixel
    /// attribution (its magnitude is drawn).
    pub heat: &'a [f32],
}

/// A blue → cyan → yellow → red ramp over `t ∈ [0, 1]`.
fn colour(t: f32) -> [f32; 3] {
    let t = t.clamp(0.0, 1.0);
    let stops = [
        [0.0, 0.0, 0.5],
        [0.0, 0.4, 1.0],
        [0.0, 1.0, 1.0],
        [1.0, 1.0, 0.0],
        [1.0, 0.3, 0.0],
        [0.6, 0.0, 0.0],
    ];
    let x = t * (stops.len() - 1) as f32;
    let i = (x.floor() as usize).min(stops.len() - 2);
    let f = x - i as f32;
    [0, 1, 2].map(|c| stops[i][c] * (1.0 - f) + stops[i + 1][c] * f)
}

fn stretch(values: &[f32]) -> impl Fn(f32) -> f32 {
    let lo = values.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    move |v| (v - lo) / span
}

/// Writes one PNG with a row per overlay (see [`overlays_png`]). The file is replaced
/// atomically.
pub fn save_overlays(
    path: &Path,
    overlays: &[Overlay<'_>],
    scale: usize,
    flip_vertical: bool,
) -> Result<()> {
    let bytes = overlays_png(overlays, scale, flip_vertical)?;
    sora_core::weights::write_atomic(path, &bytes).map_err(|e| ExplainError::Io {
        file: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// One PNG with a row per overlay: the image on the left, the map blended over it on the
/// right, each pixel drawn as a `scale × scale` square. `flip_vertical` draws row 0 at the
/// bottom (spectrograms: low frequencies below).
pub fn overlays_png(
    overlays: &[Overlay<'_>],
    scale: usize,
    flip_vertical: bool,
) -> Result<Vec<u8>> {
    let invalid = |parameter, expected: &str, found: String| ExplainError::InvalidParameter {
        method: "save_overlays",
        parameter,
        expected: expected.into(),
        found,
    };
    let first = overlays
        .first()
        .ok_or_else(|| invalid("overlays", "at least one", "none".into()))?;
    if scale == 0 || scale > 64 {
        return Err(invalid("scale", "1 ..= 64", scale.to_string()));
    }
    let (h, w) = (first.height, first.width);
    for o in overlays {
        if o.height != h || o.width != w || !(o.channels == 1 || o.channels == 3) {
            return Err(invalid(
                "overlays",
                &format!("images of one size [1 or 3, {h}, {w}]"),
                format!("[{}, {}, {}]", o.channels, o.height, o.width),
            ));
        }
        for (what, buf, len) in [
            ("image", o.image, o.channels * h * w),
            ("heat", o.heat, h * w),
        ] {
            if buf.len() != len {
                return Err(ExplainError::Length {
                    what: format!("overlay {what}"),
                    expected: len,
                    found: buf.len(),
                });
            }
        }
    }
    let gap = scale.max(2);
    let (cell_w, cell_h) = ((w * scale) as u32, (h * scale) as u32);
    let mut canvas = RgbImage::from_pixel(
        2 * cell_w + 3 * gap as u32,
        overlays.len() as u32 * (cell_h + gap as u32) + gap as u32,
        Rgb([255, 255, 255]),
    );
    for (row, o) in overlays.iter().enumerate() {
        let shade = stretch(o.image);
        let peak = o.heat.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let peak = if peak > 0.0 { peak } else { 1.0 };
        let top = (gap + row * (h * scale + gap)) as u32;
        for y in 0..h {
            let src_y = if flip_vertical { h - 1 - y } else { y };
            for x in 0..w {
                let px = |c: usize| shade(o.image[(c.min(o.channels - 1) * h + src_y) * w + x]);
                let base = [px(0), px(1), px(2)];
                let heat = o.heat[src_y * w + x].abs() / peak;
                let tint = colour(heat);
                let blend = [0, 1, 2].map(|c| 0.5 * base[c] + 0.5 * tint[c]);
                let to_u8 = |v: [f32; 3]| Rgb(v.map(|c| (c.clamp(0.0, 1.0) * 255.0).round() as u8));
                for dy in 0..scale as u32 {
                    for dx in 0..scale as u32 {
                        let (py, px0) = (
                            top + y as u32 * scale as u32 + dy,
                            x as u32 * scale as u32 + dx,
                        );
                        canvas.put_pixel(gap as u32 + px0, py, to_u8(base));
                        canvas.put_pixel(2 * gap as u32 + cell_w + px0, py, to_u8(blend));
                    }
                }
            }
        }
    }
    let mut bytes = std::io::Cursor::new(Vec::new());
    canvas
        .write_to(&mut bytes, ImageFormat::Png)
        .map_err(|e| ExplainError::Backend(format!("cannot encode PNG: {e}")))?;
    Ok(bytes.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_of_the_expected_size_and_rejects_bad_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cam.png");
        let image = [0.0, 0.5, 1.0, 0.25];
        let heat = [0.0, 0.0, 0.0, 2.0];
        let o = Overlay {
            image: &image,
            channels: 1,
            height: 2,
            width: 2,
            heat: &heat,
        };
        save_overlays(&path, &[o, o], 4, false).unwrap();
        let png = image::open(&path).unwrap().to_rgb8();
        // Two cells of 8 px and three gaps of 4 px across; two rows of 8 px and three gaps down.
        assert_eq!(png.dimensions(), (2 * 8 + 3 * 4, 2 * 8 + 3 * 4));
        // Bottom-right pixel of the first overlay is the map's peak: red-ish, not gray.
        let hot = png.get_pixel(2 * 4 + 8 + 7, 4 + 7);
        assert!(hot[0] > hot[2], "{hot:?}");
        let short = Overlay {
            heat: &heat[..3],
            ..o
        };
        assert!(matches!(
            save_overlays(&path, &[short], 4, false),
            Err(ExplainError::Length { .. })
        ));
        assert!(save_overlays(&path, &[], 4, false).is_err());
    }
}
