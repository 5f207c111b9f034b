//! Weights as safetensors with PyTorch-style names and layouts.
//!
//! A model's parameters are written under their module paths (`head.hidden.0.linear.weight`),
//! with linear weights transposed to PyTorch's `[d_out, d_in]` and normalisation `gamma/beta`
//! renamed `weight/bias`, so the file loads into the equivalent `torch.nn` module. Loading
//! checks the file's header against the model before any data is applied: every missing,
//! unexpected or mis-shaped tensor is a [`WeightsError`] that names it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};

use crate::WeightsError;

/// Name, data type and shape of one tensor in a safetensors header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Data type as safetensors spells it (`F32`, `I64`, …).
    pub dtype: String,
    /// Shape.
    pub shape: Vec<usize>,
}

/// The tensors a model holds, by PyTorch-style name, with their PyTorch-layout shapes.
pub fn expected_tensors<M: ModuleSnapshot>(model: &M) -> BTreeMap<String, Vec<usize>> {
    model
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
        .into_iter()
        .map(|t| (t.name, t.shape.to_vec()))
        .collect()
}

/// Serialises a model's parameters to safetensors bytes (PyTorch names and layouts).
pub fn to_safetensors_bytes<M: ModuleSnapshot>(model: &M) -> Result<Vec<u8>, WeightsError> {
    let mut store = SafetensorsStore::from_bytes(None)
        .with_to_adapter(BurnToPyTorchAdapter)
        .skip_enum_variants(true)
        .metadata("producer", "sora");
    let fail = |e: &dyn std::fmt::Display| WeightsError::Store {
        file: PathBuf::from("<memory>"),
        message: e.to_string(),
    };
    model.save_into(&mut store).map_err(|e| fail(&e))?;
    let bytes = store.get_bytes().map_err(|e| fail(&e))?;
    canonical(bytes).map_err(|e| fail(&e))
}

/// The same safetensors bytes with the header's entries in sorted order. burn-store writes
/// the header's metadata from a hash map, whose order changes from process to process; sorted,
/// the same model gives the same bytes every time. The tensors' data and offsets are kept as
/// they are (offsets count from the end of the header, whatever its length); the header is
/// padded with spaces to a multiple of 8 bytes, as safetensors writes it.
fn canonical(bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    let size = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("eight bytes")) as usize)
        .filter(|n| 8 + n <= bytes.len())
        .ok_or("a safetensors buffer shorter than its header")?;
    let header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + size]).map_err(|e| e.to_string())?;
    let sorted: BTreeMap<String, serde_json::Value> = header
        .into_iter()
        .map(|(name, entry)| {
            let entry = match entry {
                serde_json::Value::Object(map) => serde_json::Value::Object(
                    map.into_iter()
                        .collect::<BTreeMap<_, _>>()
                        .into_iter()
                        .collect(),
                ),
                other => other,
            };
            (name, entry)
        })
        .collect();
    let mut json = serde_json::to_vec(&sorted).map_err(|e| e.to_string())?;
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - 8 - size);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + size..]);
    Ok(out)
}

/// Writes a model's parameters to `path` atomically: the bytes go to a temporary file in the
/// same directory, which is synced and then renamed over `path`. A failure leaves any
/// previous file intact.
pub fn save_safetensors<M: ModuleSnapshot>(model: &M, path: &Path) -> Result<(), WeightsError> {
    let bytes = to_safetensors_bytes(model).map_err(|e| match e {
        WeightsError::Store { message, .. } => WeightsError::Store {
            file: path.to_path_buf(),
            message,
        },
        other => other,
    })?;
    write_atomic(path, &bytes).map_err(|source| WeightsError::Io {
        file: path.to_path_buf(),
        source,
    })
}

/// The largest weights file read ([`load_safetensors`], checkpoints): 4 GiB.
pub const MAX_WEIGHTS_BYTES: u64 = 4 << 30;
/// The largest JSON or TOML file of a model read (spec, pipeline, vocabulary, manifest): 1 GiB.
pub const MAX_JSON_BYTES: u64 = 1 << 30;

/// Reads a whole file that must be a regular file (a link is followed) of at most `limit`
/// bytes. A device, a pipe or a folder (`model.safetensors` linked to `/dev/zero`, say) is
/// refused before anything is read, and so is a file over the limit: an
/// [`InvalidInput`](std::io::ErrorKind::InvalidInput) error saying which.
pub fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    check_regular(path, limit)?;
    let mut bytes = Vec::new();
    // A file that grows while it is read is cut at the limit, then refused.
    std::io::Read::read_to_end(
        &mut std::io::Read::take(std::fs::File::open(path)?, limit + 1),
        &mut bytes,
    )?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64, limit));
    }
    Ok(bytes)
}

/// [`read_bounded`] as UTF-8 text.
pub fn read_bounded_text(path: &Path, limit: u64) -> std::io::Result<String> {
    String::from_utf8(read_bounded(path, limit)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Checks that `path` is a regular file (a link is followed) of at most `limit` bytes.
pub fn check_regular(path: &Path, limit: u64) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a folder"
        } else {
            "a device, pipe or socket"
        };
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("not a regular file ({what})"),
        ));
    }
    if meta.len() > limit {
        return Err(too_large(meta.len(), limit));
    }
    Ok(())
}

fn too_large(size: u64, limit: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{size} bytes, more than the {limit} bytes read of such a file"),
    )
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Parses the header of safetensors `bytes` (read from `file`, named in errors).
pub fn read_header(
    bytes: &[u8],
    file: &Path,
) -> Result<BTreeMap<String, TensorInfo>, WeightsError> {
    let bad = |reason: String| WeightsError::NotSafetensors {
        file: file.to_path_buf(),
        reason,
    };
    let len_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad(format!("{} bytes, too short for a header", bytes.len())))?;
    let header_len = u64::from_le_bytes(len_bytes);
    let data_start = 8u64
        .checked_add(header_len)
        .filter(|&end| end <= bytes.len() as u64)
        .ok_or_else(|| bad(format!("header length {header_len} exceeds the file size")))?
        as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..data_start])
            .map_err(|e| bad(format!("header is not a JSON object: {e}")))?;
    let data_len = (bytes.len() - data_start) as u64;
    let mut tensors = BTreeMap::new();
    for (name, entry) in header {
        if name == "__metadata__" {
            continue;
        }
        let dtype = entry["dtype"]
            .as_str()
            .ok_or_else(|| bad(format!("tensor `{name}` has no dtype")))?
            .to_string();
        let shape = entry["shape"]
            .as_array()
            .and_then(|dims| {
                dims.iter()
                    .map(|d| d.as_u64().map(|d| d as usize))
                    .collect()
            })
            .ok_or_else(|| bad(format!("tensor `{name}` has no valid shape")))?;
        let offsets: Option<Vec<u64>> = entry["data_offsets"]
            .as_array()
            .and_then(|o| o.iter().map(serde_json::Value::as_u64).collect());
        match offsets.as_deref() {
            Some(&[begin, end]) if begin <= end && end <= data_len => {}
            _ => {
                return Err(bad(format!(
                    "tensor `{name}` has data offsets outside the file"
                )));
            }
        }
        tensors.insert(name, TensorInfo { dtype, shape });
    }
    Ok(tensors)
}

/// Compares a file's header with what `model` expects; the first difference is the error.
pub fn check_against<M: ModuleSnapshot>(
    model: &M,
    header: &BTreeMap<String, TensorInfo>,
    file: &Path,
) -> Result<(), WeightsError> {
    let expected = expected_tensors(model);
    for (name, shape) in &expected {
        let Some(found) = header.get(name) else {
            return Err(WeightsError::MissingTensor {
                file: file.to_path_buf(),
                tensor: name.clone(),
                expected: shape.clone(),
            });
        };
        if found.dtype != "F32" {
            return Err(WeightsError::DType {
                file: file.to_path_buf(),
                tensor: name.clone(),
                found: found.dtype.clone(),
            });
        }
        if &found.shape != shape {
            return Err(WeightsError::ShapeMismatch {
                file: file.to_path_buf(),
                tensor: name.clone(),
                expected: shape.clone(),
                found: found.shape.clone(),
            });
        }
    }
    if let Some((name, info)) = header.iter().find(|(n, _)| !expected.contains_key(*n)) {
        return Err(WeightsError::UnexpectedTensor {
            file: file.to_path_buf(),
            tensor: name.clone(),
            found: info.shape.clone(),
        });
    }
    Ok(())
}

/// Loads safetensors `bytes` (from `file`, named in errors) into `model`, after checking
/// every tensor's name, dtype and shape against it.
pub fn load_safetensors_bytes<M: ModuleSnapshot>(
    mut model: M,
    bytes: Vec<u8>,
    file: &Path,
) -> Result<M, WeightsError> {
    let header = read_header(&bytes, file)?;
    check_against(&model, &header, file)?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .with_from_adapter(PyTorchToBurnAdapter)
        .skip_enum_variants(true);
    let result = model
        .load_from(&mut store)
        .map_err(|e| WeightsError::Store {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        return Err(WeightsError::Store {
            file: file.to_path_buf(),
            message: format!(
                "applying tensors failed: errors {:?}, missing {:?}",
                result.errors, result.missing
            ),
        });
    }
    Ok(model)
}

/// Reads `path` and loads it into `model` (see [`load_safetensors_bytes`]).
pub fn load_safetensors<M: ModuleSnapshot>(model: M, path: &Path) -> Result<M, WeightsError> {
    let bytes = read_bounded(path, MAX_WEIGHTS_BYTES).map_err(|source| WeightsError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    load_safetensors_bytes(model, bytes, path)
}
