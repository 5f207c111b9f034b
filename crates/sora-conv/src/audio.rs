//! Audio reading and features: WAV files, resampling, log-mel spectrograms and MFCCs, seeded
//! SpecAugment-style masking, and class-per-folder audio data sets.
//!
//! - [`read_wav`] reads a mono integer-PCM WAV file (8, 16, 24 or 32 bits) into a [`Clip`] of
//!   samples in [-1, 1]; [`write_wav`] writes one back as 16-bit PCM.
//! - [`resample`] changes the sample rate with band-limited (Kaiser-windowed sinc) interpolation;
//!   [`fit_length`] pads or crops to a fixed number of samples.
//! - [`FeatureExtractor`] turns a clip into a row-major `[rows, frames]` feature matrix, as set
//!   by a [`FeatureConfig`]: the waveform itself, a log-mel spectrogram (dB) or MFCCs. Log-mel
//!   and MFCC follow librosa (`librosa.feature.melspectrogram` with a periodic Hann window,
//!   `center=True, pad_mode="reflect"`, Slaney mel scale and area normalisation;
//!   `power_to_db(ref=1, amin=1e-10, top_db=None)`; `librosa.feature.mfcc` with an orthonormal
//!   DCT-II): on a test chirp they agree with librosa 0.11 to 2e-4 dB.
//! - [`Masking`] masks random bands of rows (frequency) and frames (time) of a feature matrix,
//!   reproducibly for a seeded random number generator.
//! - [`read_audio_folder`] reads a tree `root/<class>/<clip>.wav` into an [`AudioSet`].

use std::f64::consts::PI;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};

/// The result alias of audio reading and features.
pub type Result<T, E = AudioError> = std::result::Result<T, E>;

/// Audio that cannot be read, or a feature configuration that cannot be used.
///
/// Variants about a file or folder carry its path (`file`, `dir`) as given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// The file or folder could not be opened, read or written.
    #[error("{file}: {source}")]
    Io {
        /// The file or folder.
        file: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a WAV file that can be parsed (not RIFF/WAVE, corrupt or truncated).
    #[error("{file}: not a readable WAV file: {message}")]
    Wav {
        /// The file.
        file: String,
        /// What the WAV reader reported.
        message: String,
    },
    /// The samples are not integer PCM (floating point, or a compressed encoding).
    #[error("{file}: samples are {format}; expected integer PCM (8, 16, 24 or 32 bits)")]
    NotPcm {
        /// The file.
        file: String,
        /// The sample format found.
        format: String,
    },
    /// The file has more than one channel (channels are not mixed down silently).
    #[error("{file}: {channels} channels; expected mono (mix it down to 1 channel first)")]
    NotMono {
        /// The file.
        file: String,
        /// Number of channels in the file.
        channels: u16,
    },
    /// The file holds no samples.
    #[error("{file}: the file holds no samples")]
    Empty {
        /// The file.
        file: String,
    },
    /// The integer samples have a bit depth other than 8, 16, 24 or 32.
    #[error("{file}: {bits}-bit samples are not supported; expected 8, 16, 24 or 32 bits")]
    UnsupportedBits {
        /// The file.
        file: String,
        /// Bits per sample in the file.
        bits: u16,
    },
    /// The folder has no class subfolders.
    #[error("{dir}: no class subfolders; expected one folder of .wav files per class")]
    EmptyFolder {
        /// The folder.
        dir: String,
    },
    /// The folder has a single class subfolder; classification needs at least 2.
    #[error("{dir}: only one class subfolder (`{class}`); expected at least 2")]
    OneClass {
        /// The folder.
        dir: String,
        /// The only class.
        class: String,
    },
    /// A class subfolder holds no `.wav` file.
    #[error("{dir}: no .wav files in this class folder")]
    NoClips {
        /// The class subfolder.
        dir: String,
    },
    /// A configuration value or an argument is out of its allowed range.
    #[error("`{field}`: {message}")]
    InvalidConfig {
        /// The field or argument.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

// ---------------------------------------------------------------------------------------------
// WAV files

/// Mono audio: samples in [-1, 1] at `sample_rate` samples per second.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Clip {
    /// The samples, in [-1, 1].
    pub samples: Vec<f32>,
    /// Samples per second (Hz).
    pub sample_rate: u32,
}

/// Reads a mono integer-PCM WAV file (8, 16, 24 or 32 bits per sample).
///
/// An integer sample `s` of `b` bits becomes `s / 2^(b-1)`, in [-1, 1). Multi-channel files
/// are refused ([`AudioError::NotMono`]) rather than mixed down; floating-point or compressed
/// samples give [`AudioError::NotPcm`].
pub fn read_wav(path: impl AsRef<Path>) -> Result<Clip> {
    let path = path.as_ref();
    let file = path.display().to_string();
    let handle = sora_core::weights::check_regular(path, MAX_WAV_BYTES)
        .and_then(|()| std::fs::File::open(path))
        .map_err(|source| AudioError::Io {
            file: file.clone(),
            source,
        })?;
    decode_wav(std::io::BufReader::new(handle), file)
}

/// The largest WAV file read: 2 GiB (3 hours of 16-bit audio at 96 kHz).
pub const MAX_WAV_BYTES: u64 = 2 << 30;

/// Decodes a WAV file held in memory (an upload), as [`read_wav`] reads one from disk;
/// `name` names it in errors.
pub fn read_wav_bytes(name: &str, bytes: &[u8]) -> Result<Clip> {
    decode_wav(std::io::Cursor::new(bytes), name.to_string())
}

fn decode_wav(source: impl std::io::Read, file: String) -> Result<Clip> {
    let wav_err = |e: hound::Error| AudioError::Wav {
        file: file.clone(),
        message: e.to_string(),
    };
    let reader = match hound::WavReader::new(source) {
        Ok(reader) => reader,
        Err(hound::Error::Unsupported) => {
            let format = "a compressed or non-PCM encoding".to_string();
            return Err(AudioError::NotPcm { file, format });
        }
        Err(e) => return Err(wav_err(e)),
    };
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int {
        let format = format!("{}-bit floating point", spec.bits_per_sample);
        return Err(AudioError::NotPcm { file, format });
    }
    if spec.channels != 1 {
        return Err(AudioError::NotMono {
            file,
            channels: spec.channels,
        });
    }
    if ![8, 16, 24, 32].contains(&spec.bits_per_sample) {
        return Err(AudioError::UnsupportedBits {
            file,
            bits: spec.bits_per_sample,
        });
    }
    if spec.sample_rate == 0 {
        return Err(AudioError::Wav {
            file,
            message: "the sample rate is 0".into(),
        });
    }
    let scale = 1.0 / f64::from(1u32 << (spec.bits_per_sample - 1));
    let samples = reader
        .into_samples::<i32>()
        .map(|s| s.map(|s| (f64::from(s) * scale) as f32))
        .collect::<Result<Vec<_>, _>>()
        .map_err(wav_err)?;
    if samples.is_empty() {
        return Err(AudioError::Empty { file });
    }
    Ok(Clip {
        samples,
        sample_rate: spec.sample_rate,
    })
}

/// Writes a clip as a mono 16-bit PCM WAV file (samples are clipped to [-1, 1]).
pub fn write_wav(path: impl AsRef<Path>, clip: &Clip) -> Result<()> {
    let file = path.as_ref().display().to_string();
    let err = |e: hound::Error| match e {
        hound::Error::IoError(source) => AudioError::Io {
            file: file.clone(),
            source,
        },
        e => AudioError::Wav {
            file: file.clone(),
            message: e.to_string(),
        },
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: clip.sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path.as_ref(), spec).map_err(err)?;
    for &x in &clip.samples {
        let s = (f64::from(x) * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
        writer.write_sample(s).map_err(err)?;
    }
    writer.finalize().map_err(err)
}

// ---------------------------------------------------------------------------------------------
// Resampling and length

/// Zero crossings of the interpolation kernel on each side of its centre.
const ZERO_CROSSINGS: usize = 32;
/// Kernel table entries per zero crossing (the kernel is linearly interpolated between them).
const TABLE_STEPS: usize = 512;
/// Kaiser window shape (about 85 dB stop-band attenuation).
const KAISER_BETA: f64 = 8.6;
/// Cutoff as a fraction of the lower Nyquist frequency.
const ROLLOFF: f64 = 0.92;

/// Resamples `samples` from `from` Hz to `to` Hz by band-limited interpolation.
///
/// Each output sample is a Kaiser-windowed sinc interpolation (32 zero crossings on each side,
/// β = 8.6) of the input, low-passed at `0.92 · min(from, to) / 2` Hz, so that downsampling does
/// not alias; the signal is taken as zero outside its ends. The output has
/// `round(samples.len() · to / from)` samples. Equal rates return the input unchanged; a zero
/// rate gives an empty output.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to {
        return samples.to_vec();
    }
    resample_range(samples, from, to, 0..resampled_len(samples.len(), from, to))
}

/// Length of `len` samples resampled from `from` Hz to `to` Hz: `round(len · to / from)`, 0
/// for a zero rate.
fn resampled_len(len: usize, from: u32, to: u32) -> usize {
    if from == 0 || to == 0 {
        return 0;
    }
    let (from, to) = (u128::from(from), u128::from(to));
    usize::try_from((len as u128 * to + from / 2) / from).unwrap_or(usize::MAX)
}

/// The output samples `range` (cut at the output's length) of [`resample`] at different
/// rates, each computed on its own: the cost is that of the range, whatever the whole length.
fn resample_range(samples: &[f32], from: u32, to: u32, range: Range<usize>) -> Vec<f32> {
    if from == 0 || to == 0 || samples.is_empty() {
        return Vec::new();
    }
    let end = range.end.min(resampled_len(samples.len(), from, to));
    let table = sinc_table();
    // Kernel argument per input sample: the sinc's zeros lie `1 / scale` input samples apart.
    let scale = ROLLOFF * (f64::from(to) / f64::from(from)).min(1.0);
    let half = ZERO_CROSSINGS as f64 / scale;
    let step = f64::from(from) / f64::from(to);
    let last = samples.len() - 1;
    (range.start.min(end)..end)
        .map(|j| {
            let t = j as f64 * step;
            let lo = (t - half).ceil().max(0.0) as usize;
            let hi = ((t + half).floor() as usize).min(last);
            let acc: f64 = (lo..=hi)
                .map(|i| f64::from(samples[i]) * kernel(table, (t - i as f64).abs() * scale))
                .sum();
            (acc * scale) as f32
        })
        .collect()
}

/// The windowed sinc `sinc(u) · kaiser(u / ZERO_CROSSINGS)` at `u = k / TABLE_STEPS`, computed
/// once.
fn sinc_table() -> &'static [f64] {
    static TABLE: OnceLock<Vec<f64>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let n = ZERO_CROSSINGS * TABLE_STEPS;
        let i0_beta = bessel_i0(KAISER_BETA);
        (0..=n)
            .map(|k| {
                let u = k as f64 / TABLE_STEPS as f64;
                let sinc = if k == 0 {
                    1.0
                } else {
                    (PI * u).sin() / (PI * u)
                };
                let r = k as f64 / n as f64;
                sinc * bessel_i0(KAISER_BETA * (1.0 - r * r).sqrt()) / i0_beta
            })
            .collect()
    })
}

/// The table's kernel at `u ≥ 0` zero crossings from the centre (zero past the last one).
fn kernel(table: &[f64], u: f64) -> f64 {
    let pos = u * TABLE_STEPS as f64;
    let k = pos as usize;
    if k + 1 >= table.len() {
        return 0.0;
    }
    let frac = pos - k as f64;
    table[k] + frac * (table[k + 1] - table[k])
}

/// The modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, q) = (1.0, 1.0, x * x / 4.0);
    for k in 1..64 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// Fits `samples` to exactly `len` samples: a shorter input is padded with zeros at the end,
/// a longer one is cropped around its centre (dropping `(n - len) / 2` samples at the start).
pub fn fit_length(samples: &[f32], len: usize) -> Vec<f32> {
    if samples.len() >= len {
        let start = (samples.len() - len) / 2;
        return samples[start..start + len].to_vec();
    }
    let mut out = samples.to_vec();
    out.resize(len, 0.0);
    out
}

// ---------------------------------------------------------------------------------------------
// Features

/// Which features a [`FeatureExtractor`] computes (serialized as `"waveform"`, `"log_mel"`,
/// `"mfcc"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// The samples themselves: shape `[1, clip_samples]`.
    Waveform,
    /// Log-mel spectrogram in dB: shape `[n_mels, n_frames]`.
    #[default]
    LogMel,
    /// Mel-frequency cepstral coefficients: shape `[n_mfcc, n_frames]`.
    Mfcc,
}

/// How to turn a clip into features (see [`FeatureExtractor`]).
///
/// Every field has a default, so a partial configuration (in TOML or JSON) fills the rest:
/// log-mel features of 1 s at 8 kHz, 256-sample (32 ms) Hann windows every 80 samples (10 ms),
/// 40 mel bands from 0 Hz to the Nyquist frequency, and 13 MFCCs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureConfig {
    /// The features computed.
    pub kind: FeatureKind,
    /// Sample rate the clips are resampled to (Hz).
    pub sample_rate: u32,
    /// Length the resampled clips are fitted to (samples, see [`fit_length`]).
    pub clip_samples: usize,
    /// FFT and window length (samples); the spectrum has `n_fft / 2 + 1` bins.
    pub n_fft: usize,
    /// Samples between the starts of successive frames.
    pub hop: usize,
    /// Number of mel bands.
    pub n_mels: usize,
    /// Number of MFCCs kept (at most `n_mels`).
    pub n_mfcc: usize,
    /// Lowest frequency of the mel filter bank (Hz).
    pub fmin: f32,
    /// Highest frequency of the mel filter bank (Hz); `None` is the Nyquist frequency,
    /// `sample_rate / 2`.
    pub fmax: Option<f32>,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            kind: FeatureKind::LogMel,
            sample_rate: 8000,
            clip_samples: 8000,
            n_fft: 256,
            hop: 80,
            n_mels: 40,
            n_mfcc: 13,
            fmin: 0.0,
            fmax: None,
        }
    }
}

/// The highest sample rate a feature config may name (a model's `input.json` is read with
/// these bounds, so a crafted one cannot make prediction allocate without limit).
pub const MAX_SAMPLE_RATE: u32 = 384_000;
/// The longest clip a feature config may fit every recording to, in seconds.
pub const MAX_CLIP_SECONDS: usize = 600;
/// The largest STFT window.
pub const MAX_N_FFT: usize = 1 << 16;

impl FeatureConfig {
    /// Checks every field (the spectral ones too, whatever the kind).
    pub fn check(&self) -> Result<()> {
        let invalid = |field, message: String| Err(AudioError::InvalidConfig { field, message });
        let nyquist = self.sample_rate as f32 / 2.0;
        let fmax = self.fmax();
        if self.sample_rate == 0 || self.sample_rate > MAX_SAMPLE_RATE {
            let message = format!(
                "expected 1 to {MAX_SAMPLE_RATE} Hz, found {}",
                self.sample_rate
            );
            return invalid("sample_rate", message);
        }
        let most = MAX_CLIP_SECONDS * self.sample_rate as usize;
        if self.clip_samples == 0 || self.clip_samples > most {
            let message = format!(
                "expected 1 to {most} samples ({MAX_CLIP_SECONDS} s at {} Hz), found {}",
                self.sample_rate, self.clip_samples
            );
            return invalid("clip_samples", message);
        }
        if self.n_fft < 2 || self.n_fft > MAX_N_FFT {
            return invalid(
                "n_fft",
                format!("expected 2 to {MAX_N_FFT}, found {}", self.n_fft),
            );
        }
        if self.hop == 0 {
            return invalid("hop", "expected at least 1 sample".into());
        }
        if self.n_mels == 0 {
            return invalid("n_mels", "expected at least 1 band".into());
        }
        if self.n_mfcc == 0 || self.n_mfcc > self.n_mels {
            let message = format!(
                "expected 1 to n_mels = {}, found {}",
                self.n_mels, self.n_mfcc
            );
            return invalid("n_mfcc", message);
        }
        if !(self.fmin >= 0.0 && self.fmin < nyquist) {
            let message = format!("expected 0 ≤ fmin < {nyquist} Hz, found {}", self.fmin);
            return invalid("fmin", message);
        }
        if !(fmax > self.fmin && fmax <= nyquist) {
            let message =
                format!("expected fmin < fmax ≤ sample_rate / 2 = {nyquist} Hz, found {fmax}");
            return invalid("fmax", message);
        }
        Ok(())
    }

    /// The upper edge of the mel filter bank (Hz).
    fn fmax(&self) -> f32 {
        self.fmax.unwrap_or(self.sample_rate as f32 / 2.0)
    }

    /// Number of STFT frames of the fitted clip: `1 + clip_samples / hop` for an even `n_fft`.
    pub fn n_frames(&self) -> usize {
        n_frames(self.clip_samples, self.n_fft, self.hop.max(1))
    }

    /// Shape `[rows, columns]` of the features: `[1, clip_samples]` (waveform),
    /// `[n_mels, n_frames]` (log-mel) or `[n_mfcc, n_frames]` (MFCC).
    pub fn output_shape(&self) -> [usize; 2] {
        match self.kind {
            FeatureKind::Waveform => [1, self.clip_samples],
            FeatureKind::LogMel => [self.n_mels, self.n_frames()],
            FeatureKind::Mfcc => [self.n_mfcc, self.n_frames()],
        }
    }
}

/// Frames of a centred STFT of `len` samples: the signal is padded with `n_fft / 2` samples
/// on each side and cut every `hop` samples into windows of `n_fft`.
fn n_frames(len: usize, n_fft: usize, hop: usize) -> usize {
    (len + 2 * (n_fft / 2))
        .checked_sub(n_fft)
        .map_or(0, |r| 1 + r / hop)
}

/// Turns clips into features, as set by a [`FeatureConfig`].
///
/// The FFT plan, window, mel filter bank and DCT matrix are computed once in
/// [`FeatureExtractor::new`]; [`extract`](Self::extract) allocates its own buffers, so one
/// extractor can be shared across threads.
#[derive(Clone)]
pub struct FeatureExtractor {
    config: FeatureConfig,
    fft: Arc<dyn RealToComplex<f32>>,
    /// Periodic Hann window, `n_fft` samples.
    window: Vec<f32>,
    /// Mel filter bank, row-major `[n_mels, n_fft / 2 + 1]`.
    mel: Vec<f32>,
    /// Orthonormal DCT-II, row-major `[n_mfcc, n_mels]`.
    dct: Vec<f32>,
}

impl fmt::Debug for FeatureExtractor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeatureExtractor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl FeatureExtractor {
    /// Checks the configuration and precomputes the FFT plan, window, filter bank and DCT.
    pub fn new(config: FeatureConfig) -> Result<Self> {
        config.check()?;
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(config.n_fft);
        let window = hann(config.n_fft);
        let mel = mel_filters(
            config.sample_rate,
            config.n_fft,
            config.n_mels,
            config.fmin,
            config.fmax(),
        );
        let dct = dct_ortho(config.n_mfcc, config.n_mels);
        Ok(Self {
            config,
            fft,
            window,
            mel,
            dct,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// Features of a clip, row-major with the shape [`FeatureConfig::output_shape`]: rows are
    /// mel bands or coefficients (lowest first), columns are frames.
    ///
    /// The clip is resampled to `sample_rate` (when its rate differs) and fitted to
    /// `clip_samples` ([`fit_length`]). Log-mel is `10 · log10(max(mel, 1e-10))` dB of the mel
    /// power spectrogram (librosa's `power_to_db` with `ref=1`, no `top_db` clipping); MFCCs
    /// are the first `n_mfcc` coefficients of the orthonormal DCT-II of each log-mel frame.
    pub fn extract(&self, clip: &Clip) -> Result<Vec<f32>> {
        if clip.sample_rate == 0 {
            let message = "the clip's sample rate is 0 Hz".into();
            return Err(AudioError::InvalidConfig {
                field: "clip.sample_rate",
                message,
            });
        }
        let (from, to) = (clip.sample_rate, self.config.sample_rate);
        let len = self.config.clip_samples;
        let samples = if from == to {
            fit_length(&clip.samples, len)
        } else {
            // Only the samples `fit_length` keeps are resampled: the same values, at the cost
            // of `clip_samples` whatever the rates (a 4 kB clip declaring 1 Hz is 32 million
            // samples at 8 kHz).
            let start = resampled_len(clip.samples.len(), from, to).saturating_sub(len) / 2;
            let kept = resample_range(&clip.samples, from, to, start..start.saturating_add(len));
            fit_length(&kept, len)
        };
        Ok(match self.config.kind {
            FeatureKind::Waveform => samples,
            FeatureKind::LogMel => self.log_mel(&samples),
            FeatureKind::Mfcc => {
                let log_mel = self.log_mel(&samples);
                matmul(
                    &self.dct,
                    self.config.n_mels,
                    &log_mel,
                    self.config.n_frames(),
                )
            }
        })
    }

    /// Power spectrogram `|STFT|²` of `samples` (any length): returns the row-major
    /// `[n_freqs, n_frames]` powers (lowest frequency first), `n_freqs = n_fft / 2 + 1` and
    /// `n_frames`.
    ///
    /// Frames are centred: the signal is padded with `n_fft / 2` samples on each side by
    /// reflection (as numpy's `"reflect"`, without repeating the edge sample), or with zeros
    /// when it has `n_fft / 2` samples or fewer, then windowed with a periodic Hann window.
    /// (Reflection is librosa's `pad_mode="reflect"`; librosa 0.10 and later pad with zeros by
    /// default.)
    pub fn spectrogram_power(&self, samples: &[f32]) -> (Vec<f32>, usize, usize) {
        let (n_fft, hop) = (self.config.n_fft, self.config.hop);
        let n_freqs = n_fft / 2 + 1;
        let frames = n_frames(samples.len(), n_fft, hop);
        let padded = pad_center(samples, n_fft / 2);
        let mut input = vec![0.0; n_fft];
        let mut spectrum = vec![Complex::default(); n_freqs];
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0; n_freqs * frames];
        for f in 0..frames {
            let frame = &padded[f * hop..f * hop + n_fft];
            for ((x, &s), &w) in input.iter_mut().zip(frame).zip(&self.window) {
                *x = s * w;
            }
            self.fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .expect("buffer lengths match the FFT plan");
            for (k, c) in spectrum.iter().enumerate() {
                power[k * frames + f] = c.norm_sqr();
            }
        }
        (power, n_freqs, frames)
    }

    /// Log-mel spectrogram (dB) of fitted samples, row-major `[n_mels, n_frames]`.
    fn log_mel(&self, samples: &[f32]) -> Vec<f32> {
        let (power, n_freqs, frames) = self.spectrogram_power(samples);
        let mut mel = matmul(&self.mel, n_freqs, &power, frames);
        for x in &mut mel {
            *x = 10.0 * x.max(1e-10).log10();
        }
        mel
    }
}

/// `a · b` for row-major `a: [m, k]` and `b: [k, n]`.
fn matmul(a: &[f32], k: usize, b: &[f32], n: usize) -> Vec<f32> {
    let mut out = vec![0.0; a.len() / k * n];
    for (a_row, out_row) in a.chunks_exact(k).zip(out.chunks_exact_mut(n)) {
        for (&w, b_row) in a_row.iter().zip(b.chunks_exact(n)) {
            if w != 0.0 {
                out_row
                    .iter_mut()
                    .zip(b_row)
                    .for_each(|(o, &x)| *o += w * x);
            }
        }
    }
    out
}

/// `samples` padded with `pad` samples on each side: reflected when it is long enough
/// (`len > pad`), zeros otherwise.
fn pad_center(samples: &[f32], pad: usize) -> Vec<f32> {
    let n = samples.len();
    let mut out = vec![0.0; n + 2 * pad];
    out[pad..pad + n].copy_from_slice(samples);
    if n > pad {
        for k in 1..=pad {
            out[pad - k] = samples[k];
            out[pad + n - 1 + k] = samples[n - 1 - k];
        }
    }
    out
}

/// Periodic Hann window of `n` samples (`scipy.signal.get_window("hann", n)`).
fn hann(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (0.5 - 0.5 * (2.0 * PI * i as f64 / n as f64).cos()) as f32)
        .collect()
}

/// Hz to mel on the Slaney scale: linear below 1 kHz (3 mel per 200 Hz), logarithmic above.
fn hz_to_mel(hz: f64) -> f64 {
    let (f_sp, min_log_hz, logstep) = (200.0 / 3.0, 1000.0, 6.4f64.ln() / 27.0);
    if hz >= min_log_hz {
        min_log_hz / f_sp + (hz / min_log_hz).ln() / logstep
    } else {
        hz / f_sp
    }
}

/// Mel (Slaney scale) to Hz, the inverse of [`hz_to_mel`].
fn mel_to_hz(mel: f64) -> f64 {
    let (f_sp, min_log_hz, logstep) = (200.0 / 3.0, 1000.0, 6.4f64.ln() / 27.0);
    let min_log_mel = min_log_hz / f_sp;
    if mel >= min_log_mel {
        min_log_hz * (logstep * (mel - min_log_mel)).exp()
    } else {
        mel * f_sp
    }
}

/// Triangular mel filter bank with Slaney area normalisation, row-major
/// `[n_mels, n_fft / 2 + 1]`, as `librosa.filters.mel(htk=False, norm="slaney")`.
fn mel_filters(rate: u32, n_fft: usize, n_mels: usize, fmin: f32, fmax: f32) -> Vec<f32> {
    let n_freqs = n_fft / 2 + 1;
    let (lo, hi) = (hz_to_mel(f64::from(fmin)), hz_to_mel(f64::from(fmax)));
    let edges: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut weights = Vec::with_capacity(n_mels * n_freqs);
    for m in 0..n_mels {
        let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
        let norm = 2.0 / (right - left);
        weights.extend((0..n_freqs).map(|k| {
            let f = k as f64 * f64::from(rate) / n_fft as f64;
            let rise = (f - left) / (centre - left);
            let fall = (right - f) / (right - centre);
            (rise.min(fall).max(0.0) * norm) as f32
        }));
    }
    weights
}

/// The first `rows` rows of the orthonormal DCT-II of size `n`, row-major `[rows, n]`
/// (`scipy.fftpack.dct(type=2, norm="ortho")`).
fn dct_ortho(rows: usize, n: usize) -> Vec<f32> {
    let mut dct = Vec::with_capacity(rows * n);
    for k in 0..rows {
        let s = if k == 0 {
            (1.0 / n as f64).sqrt()
        } else {
            (2.0 / n as f64).sqrt()
        };
        dct.extend(
            (0..n)
                .map(|i| (s * (PI * k as f64 * (2 * i + 1) as f64 / (2 * n) as f64).cos()) as f32),
        );
    }
    dct
}

// ---------------------------------------------------------------------------------------------
// Masking

/// SpecAugment-style masking of a `[rows, frames]` feature matrix: `freq_masks` bands of up to
/// `max_freq` consecutive rows and `time_masks` bands of up to `max_time` consecutive frames are
/// set to a fill value. The default masks nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Masking {
    /// Number of time (frame) masks.
    pub time_masks: usize,
    /// Largest width of a time mask (frames).
    pub max_time: usize,
    /// Number of frequency (row) masks.
    pub freq_masks: usize,
    /// Largest width of a frequency mask (rows).
    pub max_freq: usize,
}

impl Masking {
    /// Whether [`apply`](Self::apply) leaves features unchanged.
    pub fn is_identity(&self) -> bool {
        (self.time_masks == 0 || self.max_time == 0) && (self.freq_masks == 0 || self.max_freq == 0)
    }

    /// Masks row-major `[rows, frames]` features in place with `fill`.
    ///
    /// Each frequency mask draws a width `w` uniformly in `0..=min(max_freq, rows)` and a first
    /// row uniformly in `0..=rows - w`; then each time mask does the same over frames. The same
    /// `rng` state gives the same masks.
    ///
    /// # Panics
    /// When `features.len() != rows * frames`.
    pub fn apply(
        &self,
        features: &mut [f32],
        rows: usize,
        frames: usize,
        fill: f32,
        rng: &mut impl rand::Rng,
    ) {
        assert_eq!(
            features.len(),
            rows * frames,
            "features must hold rows × frames values"
        );
        if self.is_identity() {
            return;
        }
        for _ in 0..self.freq_masks {
            let (start, width) = band(rows, self.max_freq, rng);
            features[start * frames..(start + width) * frames].fill(fill);
        }
        for _ in 0..self.time_masks {
            let (start, width) = band(frames, self.max_time, rng);
            for row in features.chunks_exact_mut(frames) {
                row[start..start + width].fill(fill);
            }
        }
    }
}

/// A random band `(start, width)` of at most `max` of `n` positions.
fn band(n: usize, max: usize, rng: &mut impl rand::Rng) -> (usize, usize) {
    let width = rng.random_range(0..=max.min(n));
    (rng.random_range(0..=n - width), width)
}

// ---------------------------------------------------------------------------------------------
// Folders

/// Labelled clips read from a folder tree (see [`read_audio_folder`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AudioSet {
    /// The clips.
    pub clips: Vec<Clip>,
    /// Class of each clip, an index into `class_names`.
    pub labels: Vec<usize>,
    /// Class names, in label order.
    pub class_names: Vec<String>,
    /// Path of each clip's file.
    pub sources: Vec<String>,
}

impl AudioSet {
    /// Number of clips.
    pub fn len(&self) -> usize {
        self.clips.len()
    }

    /// Whether there are no clips.
    pub fn is_empty(&self) -> bool {
        self.clips.is_empty()
    }

    /// The clips at `indices` (in that order, repeats allowed), with the same classes.
    ///
    /// # Panics
    /// When an index is not below [`len`](Self::len).
    pub fn subset(&self, indices: &[usize]) -> Self {
        Self {
            clips: indices.iter().map(|&i| self.clips[i].clone()).collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            class_names: self.class_names.clone(),
            sources: indices.iter().map(|&i| self.sources[i].clone()).collect(),
        }
    }
}

/// Reads a tree `root/<class>/<clip>.wav` of mono integer-PCM WAV files.
///
/// Each subfolder of `root` is a class, labelled in the sorted order of the folder names; its
/// `.wav` files (extension in any case) are read in sorted order. Other files, at the root or in
/// class folders, and entries whose names start with `.` are skipped. Errors: no class folder
/// ([`AudioError::EmptyFolder`]), a single one ([`AudioError::OneClass`]), a class folder without
/// `.wav` files ([`AudioError::NoClips`]), and any [`read_wav`] error, naming the file.
pub fn read_audio_folder(root: impl AsRef<Path>) -> Result<AudioSet> {
    let root = root.as_ref();
    let dir = root.display().to_string();
    let classes = sorted_entries(root, |p| p.is_dir())?;
    match classes.as_slice() {
        [] => return Err(AudioError::EmptyFolder { dir }),
        [(class, _)] => {
            return Err(AudioError::OneClass {
                dir,
                class: class.clone(),
            });
        }
        _ => {}
    }
    let mut set = AudioSet::default();
    for (label, (class, class_dir)) in classes.into_iter().enumerate() {
        let is_wav =
            |p: &Path| p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav"));
        let files = sorted_entries(&class_dir, is_wav)?;
        if files.is_empty() {
            return Err(AudioError::NoClips {
                dir: class_dir.display().to_string(),
            });
        }
        for (_, path) in files {
            set.clips.push(read_wav(&path)?);
            set.labels.push(label);
            set.sources.push(path.display().to_string());
        }
        set.class_names.push(class);
    }
    Ok(set)
}

/// The `(name, path)` of the entries of `dir` that pass `keep`, sorted by name, without hidden
/// entries (names starting with `.`).
fn sorted_entries(
    dir: &Path,
    keep: impl Fn(&Path) -> bool,
) -> Result<Vec<(String, std::path::PathBuf)>> {
    let io = |source| AudioError::Io {
        file: dir.display().to_string(),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.starts_with('.') && keep(&path) {
            entries.push((name, path));
        }
    }
    entries.sort();
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn sine(freq: f64, rate: u32, n: usize, amplitude: f64) -> Vec<f32> {
        (0..n)
            .map(|i| (amplitude * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin()) as f32)
            .collect()
    }

    /// Frequency (Hz) of the largest FFT bin and its amplitude, of the Hann-windowed `x`.
    fn peak(x: &[f32], rate: u32) -> (f64, f64) {
        let n = x.len();
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(n);
        let mut input: Vec<f64> = x
            .iter()
            .zip(hann(n))
            .map(|(&s, w)| f64::from(s) * f64::from(w))
            .collect();
        let mut spectrum = fft.make_output_vec();
        fft.process(&mut input, &mut spectrum).unwrap();
        let (k, c) = spectrum
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.norm().total_cmp(&b.1.norm()))
            .unwrap();
        (
            k as f64 * f64::from(rate) / n as f64,
            c.norm() * 4.0 / n as f64,
        )
    }

    fn assert_close(actual: &[f32], expected: &[f32], tol: f32, what: &str) {
        assert_eq!(actual.len(), expected.len(), "{what}: length");
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!(
                (a - e).abs() <= tol,
                "{what}[{i}]: {a} vs {e} (tolerance {tol})"
            );
        }
    }

    fn write_spec(path: &Path, spec: hound::WavSpec, samples: &[i32]) {
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        samples.iter().for_each(|&s| w.write_sample(s).unwrap());
        w.finalize().unwrap();
    }

    fn int_spec(channels: u16, bits: u16) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: 8000,
            bits_per_sample: bits,
            sample_format: hound::SampleFormat::Int,
        }
    }

    #[test]
    fn wav_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let clip = Clip {
            samples: sine(440.0, 8000, 800, 0.9),
            sample_rate: 8000,
        };
        write_wav(&path, &clip).unwrap();
        let back = read_wav(&path).unwrap();
        assert_eq!(back.sample_rate, 8000);
        assert_close(
            &back.samples,
            &clip.samples,
            1.0 / 65536.0 + 1e-7,
            "round trip",
        );
    }

    #[test]
    fn reads_every_integer_depth() {
        let dir = tempfile::tempdir().unwrap();
        for bits in [8u16, 16, 24, 32] {
            let path = dir.path().join(format!("{bits}.wav"));
            let full = 1i64 << (bits - 1);
            let samples = [-full, -full / 2, 0, full / 2, full - 1].map(|s| s as i32);
            write_spec(&path, int_spec(1, bits), &samples);
            let clip = read_wav(&path).unwrap();
            let top = (full - 1) as f32 / full as f32;
            assert_close(
                &clip.samples,
                &[-1.0, -0.5, 0.0, 0.5, top],
                1e-7,
                &format!("{bits} bits"),
            );
        }
    }

    #[test]
    fn refuses_float_stereo_odd_depths_and_empty() {
        let dir = tempfile::tempdir().unwrap();
        let float = dir.path().join("float.wav");
        let spec = hound::WavSpec {
            sample_format: hound::SampleFormat::Float,
            ..int_spec(1, 32)
        };
        let mut w = hound::WavWriter::create(&float, spec).unwrap();
        w.write_sample(0.5f32).unwrap();
        w.finalize().unwrap();
        let err = read_wav(&float).unwrap_err();
        assert!(
            matches!(&err, AudioError::NotPcm { file, .. } if file.ends_with("float.wav")),
            "{err}"
        );
        assert!(err.to_string().contains("float.wav"), "{err}");

        let stereo = dir.path().join("stereo.wav");
        write_spec(&stereo, int_spec(2, 16), &[1, 2, 3, 4]);
        let err = read_wav(&stereo).unwrap_err();
        assert!(
            matches!(&err, AudioError::NotMono { file, channels: 2 } if file.ends_with("stereo.wav")),
            "{err}"
        );

        // A 24-bit file (WAVE_FORMAT_EXTENSIBLE) whose valid bits per sample (byte 38) say 20.
        let twenty = dir.path().join("twenty.wav");
        write_spec(&twenty, int_spec(1, 24), &[1, 2]);
        let mut bytes = std::fs::read(&twenty).unwrap();
        assert_eq!(bytes[38], 24);
        bytes[38] = 20;
        std::fs::write(&twenty, bytes).unwrap();
        let err = read_wav(&twenty).unwrap_err();
        assert!(
            matches!(err, AudioError::UnsupportedBits { bits: 20, .. }),
            "{err}"
        );

        let empty = dir.path().join("empty.wav");
        write_spec(&empty, int_spec(1, 16), &[]);
        let err = read_wav(&empty).unwrap_err();
        assert!(
            matches!(&err, AudioError::Empty { file } if file.ends_with("empty.wav")),
            "{err}"
        );

        let err = read_wav(dir.path().join("missing.wav")).unwrap_err();
        assert!(
            matches!(&err, AudioError::Io { file, .. } if file.ends_with("missing.wav")),
            "{err}"
        );
    }

    #[test]
    fn truncated_or_garbage_is_a_wav_error() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.wav");
        write_wav(
            &good,
            &Clip {
                samples: vec![0.25; 100],
                sample_rate: 8000,
            },
        )
        .unwrap();
        let bytes = std::fs::read(&good).unwrap();
        for (name, content) in [
            (
                "garbage.wav",
                b"this is not a RIFF file at all, just some text".to_vec(),
            ),
            ("header_cut.wav", bytes[..30].to_vec()),
            ("data_cut.wav", bytes[..bytes.len() - 51].to_vec()),
            ("nothing.wav", Vec::new()),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            let err = read_wav(&path).unwrap_err();
            assert!(
                matches!(&err, AudioError::Wav { file, .. } if file.ends_with(name)),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn resample_up_keeps_frequency_and_amplitude() {
        let x = sine(440.0, 8000, 8000, 1.0);
        let y = resample(&x, 8000, 16000);
        assert_eq!(y.len(), 16000);
        let (freq, amplitude) = peak(&y[4000..12000], 16000);
        assert!((freq - 440.0).abs() <= 2.0, "peak at {freq} Hz");
        assert!((amplitude - 1.0).abs() < 0.01, "amplitude {amplitude}");
        // Away from the edges, the samples are those of the same sine at 16 kHz.
        let expected = sine(440.0, 16000, 16000, 1.0);
        assert_close(
            &y[200..15800],
            &expected[200..15800],
            2e-3,
            "upsampled sine",
        );
    }

    #[test]
    fn resample_down_removes_what_would_alias() {
        let pass = resample(&sine(1000.0, 16000, 16000, 1.0), 16000, 8000);
        let stop = resample(&sine(6000.0, 16000, 16000, 1.0), 16000, 8000);
        assert_eq!((pass.len(), stop.len()), (8000, 8000));
        let rms = |x: &[f32]| {
            (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
        };
        let (pass, stop) = (rms(&pass[500..7500]), rms(&stop[500..7500]));
        assert!(
            (pass - 0.5f64.sqrt()).abs() < 0.01,
            "1 kHz kept: rms {pass}"
        );
        assert!(stop < 1e-3, "6 kHz removed: rms {stop} (≤ -60 dB)");
    }

    #[test]
    fn features_resample_only_the_kept_samples() {
        // The same features as resampling the whole clip to 8 kHz, then fitting it: cropped
        // (44.1 kHz for 3 s, 7,999 Hz for just over 1 s) and padded (1 kHz for 0.25 s) clips.
        let config = FeatureConfig {
            kind: FeatureKind::Waveform,
            ..FeatureConfig::default()
        };
        let extractor = FeatureExtractor::new(config.clone()).unwrap();
        for (rate, n) in [(44100, 132_301), (1000, 251), (7999, 8001)] {
            let clip = Clip {
                samples: sine(300.0, rate, n, 0.5),
                sample_rate: rate,
            };
            let whole = fit_length(&resample(&clip.samples, rate, 8000), config.clip_samples);
            assert_eq!(
                extractor.extract(&clip).unwrap(),
                whole,
                "{rate} Hz, {n} samples"
            );
        }
    }

    #[test]
    fn a_clip_at_a_very_low_rate_is_not_resampled_whole() {
        // 400,000 samples declared at 1 Hz are 3.2 billion samples at 8 kHz (12.8 GB) that the
        // features would crop back to 8,000; a 4 kB WAV of this kind held a CPU for minutes.
        let clip = Clip {
            samples: vec![0.25; 400_000],
            sample_rate: 1,
        };
        let extractor = FeatureExtractor::new(FeatureConfig::default()).unwrap();
        let features = extractor.extract(&clip).unwrap();
        assert_eq!(features.len(), 40 * FeatureConfig::default().n_frames());
        assert!(features.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn resample_lengths_and_identity() {
        let x = sine(100.0, 8000, 1001, 0.5);
        assert_eq!(resample(&x, 8000, 8000), x);
        assert_eq!(
            resample(&x, 44100, 8000).len(),
            (1001.0f64 * 8000.0 / 44100.0).round() as usize
        );
        assert_eq!(
            resample(&x, 8000, 11025).len(),
            (1001.0f64 * 11025.0 / 8000.0).round() as usize
        );
        assert!(resample(&x, 0, 8000).is_empty());
        assert!(resample(&[], 8000, 16000).is_empty());
    }

    #[test]
    fn fit_length_pads_end_and_crops_centre() {
        assert_eq!(fit_length(&[1.0, 2.0], 4), [1.0, 2.0, 0.0, 0.0]);
        assert_eq!(fit_length(&[1.0, 2.0, 3.0, 4.0, 5.0], 2), [2.0, 3.0]);
        assert_eq!(fit_length(&[1.0, 2.0, 3.0], 3), [1.0, 2.0, 3.0]);
        assert!(fit_length(&[1.0], 0).is_empty());
    }

    #[test]
    fn config_checks_and_shapes() {
        let config = FeatureConfig::default();
        config.check().unwrap();
        assert_eq!(config.output_shape(), [40, 101]);
        let mfcc = FeatureConfig {
            kind: FeatureKind::Mfcc,
            ..config.clone()
        };
        assert_eq!(mfcc.output_shape(), [13, 101]);
        let wave = FeatureConfig {
            kind: FeatureKind::Waveform,
            ..config.clone()
        };
        assert_eq!(wave.output_shape(), [1, 8000]);
        let bad = [
            (
                "n_fft",
                FeatureConfig {
                    n_fft: 1,
                    ..config.clone()
                },
            ),
            (
                "n_mels",
                FeatureConfig {
                    n_mels: 0,
                    ..config.clone()
                },
            ),
            (
                "n_mfcc",
                FeatureConfig {
                    n_mfcc: 41,
                    ..config.clone()
                },
            ),
            (
                "hop",
                FeatureConfig {
                    hop: 0,
                    ..config.clone()
                },
            ),
            (
                "fmax",
                FeatureConfig {
                    fmax: Some(4001.0),
                    ..config.clone()
                },
            ),
            (
                "fmin",
                FeatureConfig {
                    fmin: f32::NAN,
                    ..config.clone()
                },
            ),
            (
                "sample_rate",
                FeatureConfig {
                    sample_rate: 0,
                    ..config.clone()
                },
            ),
            (
                "clip_samples",
                FeatureConfig {
                    clip_samples: 0,
                    ..config.clone()
                },
            ),
            (
                "clip_samples",
                FeatureConfig {
                    clip_samples: MAX_CLIP_SECONDS * config.sample_rate as usize + 1,
                    ..config.clone()
                },
            ),
            (
                "sample_rate",
                FeatureConfig {
                    sample_rate: MAX_SAMPLE_RATE + 1,
                    ..config.clone()
                },
            ),
            (
                "n_fft",
                FeatureConfig {
                    n_fft: MAX_N_FFT + 1,
                    ..config.clone()
                },
            ),
        ];
        for (field, config) in bad {
            let err = FeatureExtractor::new(config).unwrap_err();
            assert!(
                matches!(err, AudioError::InvalidConfig { field: f, .. } if f == field),
                "{field}: {err}"
            );
        }
    }

    #[test]
    fn extractor_is_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<FeatureExtractor>();
    }

    #[test]
    fn stft_of_a_sine_peaks_at_its_bin() {
        let extractor = FeatureExtractor::new(FeatureConfig::default()).unwrap();
        // 1 kHz at 8 kHz is bin 32 of 256; a centred bin of a Hann window has |X| = A · n_fft / 4.
        let (power, n_freqs, frames) = extractor.spectrogram_power(&sine(1000.0, 8000, 8000, 1.0));
        assert_eq!((n_freqs, frames), (129, 101));
        let column: Vec<f32> = (0..n_freqs).map(|k| power[k * frames + 50]).collect();
        let (bin, &top) = column
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap();
        assert_eq!(bin, 32);
        assert!((top / 4096.0 - 1.0).abs() < 1e-3, "peak power {top}");
        assert!(
            column[31] / top > 0.2 && column[34] / top < 1e-6,
            "Hann leakage: {column:?}"
        );
    }

    // Reference values of the tests below were produced with librosa 0.11.0 (numpy 2.4.6,
    // scipy 1.17.1) by:
    //
    // import numpy as np, librosa
    // sr, n, T = 8000, 2000, 0.25
    // k = np.arange(n); t = k / sr
    // x = (0.5 * np.sin(2 * np.pi * (100 * t + 3700 * t * t / (2 * T)))
    //      + 0.1 * ((k % 40) / 40 - 0.5)).astype(np.float32)
    // W = librosa.filters.mel(sr=sr, n_fft=256, n_mels=40)
    // S = np.abs(librosa.stft(x, n_fft=256, hop_length=80, window="hann", center=True,
    //                         pad_mode="reflect")) ** 2
    // L = librosa.power_to_db(W @ S, ref=1.0, amin=1e-10, top_db=None)
    // C = librosa.feature.mfcc(S=L, n_mfcc=13)
    // rows = [(np.flatnonzero(r)[0], np.flatnonzero(r)[-1], r.sum(), r.max()) for r in W]
    // print(rows, L[:, [0, 1, 12, 25]].T, C[:, [0, 12, 25]].T)
    // print(L.sum(), (L.astype(np.float64) ** 2).sum(), C.sum(), np.abs(C).sum())

    /// The reference signal: a 100 Hz → 3.8 kHz linear chirp plus a 200 Hz sawtooth, 0.25 s at 8 kHz.
    fn chirp() -> Clip {
        let samples = (0..2000)
            .map(|k| {
                let t = k as f64 / 8000.0;
                let chirp = 0.5 * (2.0 * PI * (100.0 * t + 3700.0 * t * t / (2.0 * 0.25))).sin();
                (chirp + 0.1 * ((k % 40) as f64 / 40.0 - 0.5)) as f32
            })
            .collect();
        Clip {
            samples,
            sample_rate: 8000,
        }
    }

    fn chirp_config(kind: FeatureKind) -> FeatureConfig {
        FeatureConfig {
            kind,
            clip_samples: 2000,
            ..FeatureConfig::default()
        }
    }

    /// librosa.filters.mel(sr=8000, n_fft=256, n_mels=40): per row, the first and last nonzero
    /// bins, the sum and the maximum of the weights.
    const MEL_ROWS: [(usize, usize, f64, f64); 40] = [
        (1, 3, 3.17226388e-02, 1.58613194e-02),
        (2, 5, 3.17226350e-02, 1.42330397e-02),
        (4, 7, 3.17226350e-02, 1.28154941e-02),
        (6, 9, 3.17226388e-02, 1.44437728e-02),
        (8, 10, 3.19333710e-02, 1.60720516e-02),
        (10, 12, 3.31401825e-02, 1.72788650e-02),
        (11, 14, 3.17226388e-02, 1.56505872e-02),
        (13, 16, 3.17226350e-02, 1.40223084e-02),
        (15, 18, 3.17226388e-02, 1.30262263e-02),
        (17, 20, 3.17226388e-02, 1.46545051e-02),
        (19, 21, 3.21441032e-02, 1.62827838e-02),
        (21, 23, 3.29294503e-02, 1.70681328e-02),
        (22, 25, 3.17226388e-02, 1.54398549e-02),
        (24, 27, 3.17226388e-02, 1.38115762e-02),
        (26, 29, 3.17226350e-02, 1.32369585e-02),
        (28, 31, 3.17226388e-02, 1.48652364e-02),
        (30, 32, 3.21697667e-02, 1.62982251e-02),
        (32, 34, 3.23033817e-02, 1.63259525e-02),
        (33, 37, 3.22861820e-02, 1.53643833e-02),
        (35, 39, 3.21813338e-02, 1.38922166e-02),
        (38, 41, 3.14621180e-02, 1.15845371e-02),
        (40, 44, 3.21573690e-02, 1.17089376e-02),
        (42, 46, 3.15508544e-02, 1.08683631e-02),
        (45, 49, 3.26249748e-02, 1.14462441e-02),
        (47, 52, 3.17423232e-02, 1.02682468e-02),
        (50, 56, 3.19302529e-02, 9.79827531e-03),
        (53, 59, 3.23618166e-02, 9.47708357e-03),
        (57, 63, 3.15295607e-02, 7.85954483e-03),
        (60, 66, 3.22087295e-02, 8.40074942e-03),
        (64, 70, 3.19403000e-02, 7.93478172e-03),
        (67, 75, 3.22177932e-02, 7.60355825e-03),
        (71, 79, 3.17767300e-02, 6.71972567e-03),
        (76, 84, 3.21250707e-02, 6.59918273e-03),
        (80, 89, 3.18914950e-02, 6.04593661e-03),
        (85, 95, 3.21013741e-02, 5.87973418e-03),
        (90, 101, 3.18906605e-02, 5.36015071e-03),
        (96, 107, 3.20961848e-02, 5.26621984e-03),
        (102, 113, 3.19608301e-02, 4.85385582e-03),
        (108, 120, 3.20149697e-02, 4.60281130e-03),
        (114, 127, 3.19195911e-02, 4.29274514e-03),
    ];

    #[test]
    fn mel_filters_match_librosa() {
        let mel = mel_filters(8000, 256, 40, 0.0, 4000.0);
        for (m, (row, &(first, last, sum, max))) in mel.chunks_exact(129).zip(&MEL_ROWS).enumerate()
        {
            let nonzero: Vec<usize> = (0..129).filter(|&k| row[k] != 0.0).collect();
            assert_eq!(
                (nonzero[0], nonzero[nonzero.len() - 1]),
                (first, last),
                "row {m}"
            );
            let row_max = row.iter().copied().fold(0.0, f32::max);
            let row_sum: f64 = row.iter().map(|&w| f64::from(w)).sum();
            assert!(
                (row_sum - sum).abs() < 1e-7,
                "row {m} sum: {row_sum} vs {sum}"
            );
            assert!(
                (f64::from(row_max) - max).abs() < 1e-8,
                "row {m} max: {row_max} vs {max}"
            );
        }
    }

    #[test]
    fn log_mel_and_mfcc_match_librosa() {
        #[rustfmt::skip]
        let log_mel: [(usize, [f32; 40]); 4] = [
            (0, [6.9735, 5.2786, 9.3234, 8.1548, -4.4450, -7.0916, -13.3100, -22.1968, -19.6242, -17.6252, -25.1747, -28.6940, -22.2953, -23.6665, -36.0607, -29.7440, -24.1544, -32.2778, -36.3259, -27.1013, -32.2131, -35.0701, -29.2806, -38.8301, -31.3100, -36.0252, -33.1341, -36.8203, -33.7979, -37.6619, -35.7188, -36.4117, -37.6952, -37.5972, -37.5296, -38.0024, -38.4721, -38.6796, -38.8495, -38.9295]),
            (1, [-2.8798, 1.0333, 6.8557, 9.0259, 8.6043, 5.8942, -0.9487, -9.6346, -19.0360, -21.0285, -22.3909, -36.0940, -27.9792, -23.0727, -30.6668, -38.3969, -25.9211, -27.3685, -41.9467, -28.9626, -28.7488, -39.6332, -28.9243, -34.8200, -31.6789, -33.1549, -33.1060, -34.4629, -33.0784, -36.4494, -33.8568, -35.4961, -36.2539, -36.0547, -35.8943, -36.5576, -36.9011, -37.0868, -37.2306, -37.2963]),
            (12, [-41.9087, -29.8713, -12.7463, -12.6348, -33.8002, -24.5855, -16.8538, -24.7573, -37.4822, -22.2907, -22.0451, -50.9883, -29.8198, -23.0048, -30.0764, -43.4050, -26.4027, -26.7887, -48.6090, -29.3785, -28.3290, -42.0475, -28.8632, -34.0552, -25.0803, -8.6632, 4.1336, 8.5302, 5.8407, -6.1061, -26.6801, -35.3983, -36.1134, -35.9285, -35.7330, -36.4378, -36.7743, -36.9494, -37.0999, -37.1634]),
            (25, [-19.1445, -15.1539, -12.6739, -17.5078, -23.5731, -21.7756, -22.0903, -23.6495, -30.6559, -25.1349, -25.5509, -29.8146, -29.8755, -28.2443, -28.0169, -35.5019, -30.4124, -29.1136, -32.8736, -33.3055, -30.7830, -33.6536, -33.7271, -31.7868, -36.2540, -32.1221, -36.1455, -32.5902, -35.3929, -32.8777, -33.2619, -33.1532, -31.3292, -30.0605, -28.5082, -25.9912, -22.4160, -17.0676, 1.5341, 6.6076]),
        ];
        #[rustfmt::skip]
        let mfcc: [(usize, [f32; 13]); 3] = [
            (0, [-167.9305, 73.7075, 35.4815, 25.5248, 14.5695, 9.1644, 4.5658, 1.8048, -0.2422, -2.1794, -4.3197, -4.2080, -3.5267]),
            (12, [-173.3509, -1.0126, -8.8693, 44.8687, -29.9983, -10.9150, 24.8672, -31.7590, -7.2941, 12.1096, -21.5599, 1.7502, 2.8614]),
            (25, [-168.0826, 3.0009, 41.4287, -15.2117, 23.6283, -12.1364, 13.6948, -9.4564, 9.3920, -8.3753, 5.2009, -6.9325, 3.7097]),
        ];
        let column = |x: &[f32], rows: usize, f: usize| -> Vec<f32> {
            (0..rows).map(|r| x[r * 26 + f]).collect()
        };
        let sums = |x: &[f32]| {
            x.iter().fold((0.0, 0.0, 0.0), |(s, q, a), &v| {
                let v = f64::from(v);
                (s + v, q + v * v, a + v.abs())
            })
        };

        let config = chirp_config(FeatureKind::LogMel);
        assert_eq!(config.output_shape(), [40, 26]);
        let l = FeatureExtractor::new(config)
            .unwrap()
            .extract(&chirp())
            .unwrap();
        assert_eq!(l.len(), 40 * 26);
        for (f, expected) in &log_mel {
            assert_close(
                &column(&l, 40, *f),
                expected,
                1e-2,
                &format!("log-mel frame {f}"),
            );
        }
        let (sum, sum_sq, _) = sums(&l);
        assert!(
            (sum - -27925.7780).abs() < 1.0 && (sum_sq - 941518.3637).abs() < 50.0,
            "{sum} {sum_sq}"
        );

        let c = FeatureExtractor::new(chirp_config(FeatureKind::Mfcc))
            .unwrap()
            .extract(&chirp())
            .unwrap();
        assert_eq!(c.len(), 13 * 26);
        for (f, expected) in &mfcc {
            assert_close(
                &column(&c, 13, *f),
                expected,
                1e-2,
                &format!("mfcc frame {f}"),
            );
        }
        let (sum, _, abs) = sums(&c);
        assert!(
            (sum - -4834.8110).abs() < 0.5 && (abs - 9702.2546).abs() < 0.5,
            "{sum} {abs}"
        );
    }

    #[test]
    fn extract_resamples_fits_and_pads_short_clips() {
        let wave = FeatureExtractor::new(FeatureConfig {
            kind: FeatureKind::Waveform,
            ..FeatureConfig::default()
        })
        .unwrap();
        let clip = Clip {
            samples: sine(440.0, 16000, 8000, 0.5),
            sample_rate: 16000,
        };
        let x = wave.extract(&clip).unwrap();
        assert_eq!(x.len(), 8000);
        assert_eq!(
            x[4000..],
            vec![0.0; 4000][..],
            "0.5 s at 8 kHz, zero-padded to 1 s"
        );
        let mel = FeatureExtractor::new(FeatureConfig::default()).unwrap();
        // Shorter than n_fft / 2 + 1: zero padding instead of reflection.
        let tiny = mel
            .extract(&Clip {
                samples: vec![0.5; 3],
                sample_rate: 8000,
            })
            .unwrap();
        assert_eq!(tiny.len(), 40 * 101);
        assert!(tiny.iter().all(|v| v.is_finite() && *v >= -100.0));
        let short = FeatureExtractor::new(FeatureConfig {
            clip_samples: 100,
            ..FeatureConfig::default()
        })
        .unwrap();
        assert_eq!(
            short
                .extract(&Clip {
                    samples: vec![0.1; 100],
                    sample_rate: 8000
                })
                .unwrap()
                .len(),
            40 * 2
        );
        let err = mel
            .extract(&Clip {
                samples: vec![0.0; 10],
                sample_rate: 0,
            })
            .unwrap_err();
        assert!(matches!(
            err,
            AudioError::InvalidConfig {
                field: "clip.sample_rate",
                ..
            }
        ));
    }

    #[test]
    fn config_deserializes_snake_case_with_defaults() {
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, MapDeserializer};
        let kind = |name: &str| {
            FeatureKind::deserialize(IntoDeserializer::<Error>::into_deserializer(name))
        };
        assert_eq!(kind("log_mel").unwrap(), FeatureKind::LogMel);
        assert_eq!(kind("waveform").unwrap(), FeatureKind::Waveform);
        assert!(kind("LogMel").is_err());
        let partial =
            MapDeserializer::<_, Error>::new([("n_mels", 20u64), ("hop", 160)].into_iter());
        let config = FeatureConfig::deserialize(partial).unwrap();
        assert_eq!(
            config,
            FeatureConfig {
                n_mels: 20,
                hop: 160,
                ..FeatureConfig::default()
            }
        );
        let typo = MapDeserializer::<_, Error>::new([("n_mel", 20u64)].into_iter());
        assert!(FeatureConfig::deserialize(typo).is_err());
    }

    #[test]
    fn masking_is_seeded_and_keeps_shape() {
        let masking = Masking {
            time_masks: 2,
            max_time: 10,
            freq_masks: 2,
            max_freq: 8,
        };
        assert!(!masking.is_identity() && Masking::default().is_identity());
        let (rows, frames) = (40, 101);
        let original: Vec<f32> = (0..rows * frames).map(|i| i as f32).collect();
        let masked = |seed: u64| {
            let mut x = original.clone();
            masking.apply(
                &mut x,
                rows,
                frames,
                -1.0,
                &mut ChaCha8Rng::seed_from_u64(seed),
            );
            x
        };
        let (a, b, c) = (masked(7), masked(7), masked(8));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), rows * frames);
        let filled = a.iter().filter(|&&v| v == -1.0).count();
        assert!(
            filled > 0 && filled <= 2 * 8 * frames + 2 * 10 * rows,
            "{filled} masked"
        );
        // Every value is either kept or the fill; masked rows are whole rows or whole frame bands.
        assert!(a.iter().zip(&original).all(|(&m, &o)| m == o || m == -1.0));
        let mut same = original.clone();
        Masking::default().apply(
            &mut same,
            rows,
            frames,
            -1.0,
            &mut ChaCha8Rng::seed_from_u64(7),
        );
        assert_eq!(same, original);
    }

    #[test]
    fn reads_a_folder_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("README.txt"), "skipped").unwrap();
        let err = read_audio_folder(root).unwrap_err();
        assert!(matches!(err, AudioError::EmptyFolder { .. }), "{err}");
        for class in ["b", "a"] {
            std::fs::create_dir(root.join(class)).unwrap();
        }
        let clip = |n| Clip {
            samples: vec![0.25; n],
            sample_rate: 8000,
        };
        write_wav(root.join("a/2.WAV"), &clip(2)).unwrap();
        write_wav(root.join("a/1.wav"), &clip(1)).unwrap();
        std::fs::write(root.join("a/notes.txt"), "skipped").unwrap();
        let err = read_audio_folder(root).unwrap_err();
        assert!(
            matches!(&err, AudioError::NoClips { dir } if dir.ends_with('b')),
            "{err}"
        );
        write_wav(root.join("b/x.wav"), &clip(3)).unwrap();
        let set = read_audio_folder(root).unwrap();
        assert_eq!(set.class_names, ["a", "b"]);
        assert_eq!(set.labels, [0, 0, 1]);
        assert_eq!(
            set.clips
                .iter()
                .map(|c| c.samples.len())
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(set.sources[1].ends_with("2.WAV"));
        let sub = set.subset(&[2, 0]);
        assert_eq!(
            (sub.len(), sub.labels.as_slice(), sub.class_names.len()),
            (2, &[1, 0][..], 2)
        );
        std::fs::remove_dir_all(root.join("b")).unwrap();
        let err = read_audio_folder(root).unwrap_err();
        assert!(
            matches!(&err, AudioError::OneClass { class, .. } if class == "a"),
            "{err}"
        );
        std::fs::write(root.join("a/1.wav"), "garbage").unwrap();
        std::fs::create_dir(root.join("c")).unwrap();
        write_wav(root.join("c/x.wav"), &clip(3)).unwrap();
        let err = read_audio_folder(root).unwrap_err();
        assert!(
            matches!(&err, AudioError::Wav { file, .. } if file.ends_with("1.wav")),
            "{err}"
        );
    }

    #[test]
    fn reads_free_spoken_digits() {
        // The copy bundled with the repository (data/fsdd).
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/fsdd"));
        let set = read_audio_folder(root).unwrap();
        assert_eq!(set.len(), 2000);
        assert_eq!(
            set.class_names,
            (0..10).map(|d| d.to_string()).collect::<Vec<_>>()
        );
        assert!(
            set.clips
                .iter()
                .all(|c| c.sample_rate == 8000 && !c.samples.is_empty())
        );
        assert_eq!(
            (0..10)
                .map(|c| set.labels.iter().filter(|&&l| l == c).count())
                .collect::<Vec<_>>(),
            [200; 10]
        );
        let extractor = FeatureExtractor::new(FeatureConfig {
            kind: FeatureKind::Mfcc,
            ..FeatureConfig::default()
        })
        .unwrap();
        let x = extractor.extract(&set.clips[0]).unwrap();
        assert_eq!(x.len(), 13 * 101);
        assert!(x.iter().all(|v| v.is_finite()));
    }
}
