//! The job's options and training: one token stream, truncated back-propagation through
//! time, the held-out end, the saved run.

#[allow(unused_imports)]
use super::*;

/// Everything [`train`] needs besides the text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateConfig {
    /// Characters or words.
    pub tokens: TokenKind,
    /// The word tokenizer (used with [`TokenKind::Word`]).
    pub tokenizer: TokenizerConfig,
    /// Keep tokens seen at least this many times in the training part (others read as
    /// `<unk>`).
    pub min_count: usize,
    /// Embedding width.
    pub d_embed: usize,
    /// Hidden width of each recurrent layer.
    pub d_hidden: usize,
    /// Stacked recurrent layers.
    pub layers: usize,
    /// The recurrent cell.
    pub cell: Cell,
    /// Dropout on the embeddings, between layers and before the projection.
    pub dropout: f64,
    /// Tokens per chunk of truncated back-propagation through time.
    pub seq_len: usize,
    /// Streams read side by side (fewer when the text is short: each needs 2 tokens).
    pub batch_size: usize,
    /// Epochs (passes over the training text).
    pub epochs: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Gradients are scaled down to at most this global L2 norm.
    pub clip_norm: f64,
    /// Fraction of the tokens, at the end of the text, held out for evaluation, in
    /// `(0, 0.5]`.
    pub valid_fraction: f64,
    /// Seed of the initial weights and of dropout.
    pub seed: u64,
    /// Per-epoch lines on standard output (anything but [`Progress::Quiet`]) or nothing.
    pub progress: Progress,
}

impl Default for GenerateConfig {
    /// Characters; a one-layer LSTM, 64-wide embeddings, 256 hidden units, dropout 0.1;
    /// chunks of 64 tokens, 32 streams, 10 epochs, Adam at 3e-3 with gradients clipped to
    /// norm 1; the last 10 % of the text held out; seed 42.
    fn default() -> Self {
        Self {
            tokens: TokenKind::Char,
            tokenizer: TokenizerConfig {
                lowercase: true,
                char_ngrams: None,
                keep_punctuation: true,
            },
            min_count: 1,
            d_embed: 64,
            d_hidden: 256,
            layers: 1,
            cell: Cell::Lstm,
            dropout: 0.1,
            seq_len: 64,
            batch_size: 32,
            epochs: 10,
            lr: 3e-3,
            clip_norm: 1.0,
            valid_fraction: 0.1,
            seed: 42,
            progress: Progress::Plain,
        }
    }
}

impl GenerateConfig {
    /// Checks the job's own options (the model's are checked by
    /// [`LanguageModelConfig::check`]); the error names the first one out of range.
    pub fn check(&self) -> Result<()> {
        for (field, value) in [
            ("seq_len", self.seq_len),
            ("batch_size", self.batch_size),
            ("epochs", self.epochs),
        ] {
            if value == 0 {
                return Err(invalid(field, "at least 1", value));
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(invalid("lr", "a positive learning rate", self.lr));
        }
        if !(self.clip_norm.is_finite() && self.clip_norm > 0.0) {
            return Err(invalid("clip_norm", "a positive norm", self.clip_norm));
        }
        if !(self.valid_fraction > 0.0 && self.valid_fraction <= 0.5) {
            return Err(invalid(
                "valid_fraction",
                "a fraction in (0, 0.5]",
                self.valid_fraction,
            ));
        }
        Ok(())
    }

    /// The model's shape for a vocabulary of `vocab_size` tokens.
    pub fn model(&self, vocab_size: usize) -> LanguageModelConfig {
        LanguageModelConfig::new(vocab_size)
            .with_d_embed(self.d_embed)
            .with_d_hidden(self.d_hidden)
            .with_layers(self.layers)
            .with_cell(self.cell)
            .with_dropout(self.dropout)
    }
}

/// The saved text side of a language model: how text becomes tokens and the model's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedGenerator {
    /// Characters or words.
    pub tokens: TokenKind,
    /// The word tokenizer.
    pub tokenizer: TokenizerConfig,
    /// The vocabulary of the training text (the line break included).
    pub vocabulary: Vocabulary,
    /// The model's shape.
    pub model: LanguageModelConfig,
}

/// A finished run of [`train`].
#[derive(Debug)]
pub struct GenerateRun {
    /// The options as run.
    pub config: GenerateConfig,
    /// The text side, saved with the model.
    pub saved: SavedGenerator,
    /// The trained model (the best epoch's weights), without autodiff.
    pub model: LanguageModel,
    /// Per-epoch training and held-out loss.
    pub history: History,
    /// The epoch kept (1-based): the lowest held-out loss.
    pub best_epoch: usize,
    /// The kept model on the held-out tokens.
    pub held_out: LmMetrics,
    /// Unigram and bigram references on the same held-out tokens.
    pub baselines: Baselines,
    /// Tokens trained on.
    pub train_tokens: usize,
    /// Held-out tokens.
    pub held_out_tokens: usize,
    /// Streams read side by side.
    pub streams: usize,
}

/// What `metrics.json` of a language model holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedMetrics {
    /// The model on the held-out tokens.
    pub held_out: LmMetrics,
    /// The n-gram references on the same tokens.
    pub baselines: Baselines,
    /// The epoch kept.
    pub best_epoch: usize,
}

/// `ids` laid out as `streams` contiguous rows of equal length (the remainder dropped).
fn streams(ids: &[usize], streams: usize) -> (Vec<i64>, usize) {
    let len = ids.len() / streams;
    let data = ids[..len * streams].iter().map(|&id| id as i64).collect();
    (data, len)
}

/// A `[rows, cols]` block of a row-major `[rows, len]` id matrix, from column `start`.
fn block(data: &[i64], rows: usize, len: usize, start: usize, cols: usize) -> Vec<i64> {
    (0..rows)
        .flat_map(|r| {
            data[r * len + start..r * len + start + cols]
                .iter()
                .copied()
        })
        .collect()
}

/// Mean next-token cross-entropy (nats) of `model` over `ids`, read as `n_streams` streams in
/// chunks of `seq_len` with the state carried; returns it with the number of tokens predicted.
pub(super) fn evaluate(
    model: &LanguageModel,
    ids: &[usize],
    n_streams: usize,
    seq_len: usize,
    device: &Device,
) -> (f64, usize) {
    let n_streams = n_streams.clamp(1, (ids.len() / 2).max(1));
    let (data, len) = streams(ids, n_streams);
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut state: Option<LmState> = None;
    let mut total = 0.0f64;
    let mut count = 0usize;
    let mut start = 0;
    while start + 1 < len {
        let t = seq_len.min(len - 1 - start);
        let input = Tensor::<2, Int>::from_data(
            TensorData::new(block(&data, n_streams, len, start, t), [n_streams, t]),
            device,
        );
        let target = Tensor::<1, Int>::from_data(
            TensorData::new(block(&data, n_streams, len, start + 1, t), [n_streams * t]),
            device,
        );
        let (logits, next) = model.forward(input, state);
        let vocab = model.vocab_size;
        let loss = loss_fn.forward(logits.reshape([n_streams * t, vocab]), target);
        total += loss.into_scalar::<f32>() as f64 * (n_streams * t) as f64;
        count += n_streams * t;
        state = Some(next);
        start += t;
    }
    (total / count.max(1) as f64, count)
}

/// Tokenizes `corpus`, holds out the end of it, trains a language model on the rest and
/// evaluates it (and the n-gram references) on the held-out part.
///
/// The held-out tokens are read as the same number of side-by-side streams as the training
/// tokens (each stream's first token is context only, so [`LmMetrics::tokens`] is the
/// held-out count less one per stream); the n-gram references score every held-out token
/// after the first.
///
/// Fails with [`GenerateError::EmptyText`] when the text has nothing but white space, with
/// [`GenerateError::TooShort`] when it has fewer than 4 tokens (line breaks included), and
/// with [`GenerateError::InvalidOption`] or [`GenerateError::Lm`] naming an option out of
/// range.
pub fn train(corpus: &Corpus, config: &GenerateConfig, device: &Device) -> Result<GenerateRun> {
    train_in(corpus, config, &RunContext::quiet(device.clone()))
}

/// Where a language model's run stands, saved with every checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunState {
    config: GenerateConfig,
    epochs_done: usize,
    best_epoch: usize,
    best_loss: f64,
    history: History,
    /// Each epoch's wall-clock seconds (the history's own JSON leaves them out).
    seconds: Vec<f64>,
    #[serde(flatten)]
    files: CheckpointFiles,
}

/// [`train`] in a run's context: its device, and its checkpoints (phase `train`), from
/// which an interrupted run continues with the weights, optimizer state and history it had.
pub(super) fn train_in(
    corpus: &Corpus,
    config: &GenerateConfig,
    ctx: &RunContext,
) -> Result<GenerateRun> {
    let device = &ctx.device;
    config.check()?;
    if corpus.lines.iter().all(|line| line.trim().is_empty()) {
        return Err(GenerateError::EmptyText {
            origin: corpus.source.clone(),
        });
    }
    let tokens = Tokens::new(config.tokens, &config.tokenizer)?;
    let mut stream: Vec<String> = Vec::new();
    for line in &corpus.lines {
        stream.extend(tokens.line(line));
        stream.push(LINE_BREAK.to_string());
    }
    let n_held = ((stream.len() as f64 * config.valid_fraction).round() as usize).max(2);
    const NEEDED: usize = 4;
    if stream.len() < n_held + 2 {
        return Err(GenerateError::TooShort {
            origin: corpus.source.clone(),
            tokens: stream.len(),
            kind: config.tokens,
            needed: NEEDED.max(n_held + 2),
        });
    }
    let (train_tokens, held_tokens) = stream.split_at(stream.len() - n_held);
    let vocab_config = VocabConfig {
        min_count: config.min_count,
        max_size: None,
    };
    let vocabulary = Vocabulary::build([train_tokens], &vocab_config);
    let train_ids = vocabulary.encode(train_tokens);
    let held_ids = vocabulary.encode(held_tokens);
    let lm_config = config.model(vocabulary.len());
    lm_config.check()?;

    let train_device = device.clone().autodiff();
    // The device's generator is shared by the process: no other run seeds it or draws from
    // it between the seed and the last initial weight.
    let mut model = sora_train::seeded(&train_device, config.seed, || {
        let model = lm_config.init(&train_device)?;
        sora_train::materialize(&model);
        Ok::<_, GenerateError>(model)
    })?;
    let mut optimizer = AdamConfig::new()
        .with_epsilon(1e-8)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(config.clip_norm as f32)))
        .init();
    let loss_fn = CrossEntropyLossConfig::new().init(&train_device);
    let n_streams = config.batch_size.min(train_ids.len() / 2).max(1);
    let (data, len) = streams(&train_ids, n_streams);
    let vocab = vocabulary.len();
    let show = config.progress != Progress::Quiet;

    let mut history = History::default();
    let mut best: Option<(f64, usize, LanguageModel)> = None;
    let checkpoints = ctx.checkpoints.as_ref().map(|c| c.phase("train"));
    let mut files = CheckpointFiles::default();
    let mut first_epoch = 0;
    if let Some(dir) = &checkpoints
        && let Some(state) = read_state::<RunState>(dir)?
    {
        let state_file = dir.join(checkpoint::STATE_FILE);
        if state.config != *config || state.epochs_done > config.epochs {
            return Err(TrainError::Checkpoint {
                file: state_file,
                message: "the checkpoint was written by a run with different options".into(),
            }
            .into());
        }
        model = load_module(model, &dir.join(&state.files.last_model))?;
        optimizer = read_optimizer(&dir.join(&state.files.last_optimizer), optimizer)?;
        let best_model = load_module(model.valid(), &dir.join(&state.files.best_model))?;
        best = Some((state.best_loss, state.best_epoch, best_model));
        history = state.history;
        for (epoch, seconds) in history.epochs.iter_mut().zip(&state.seconds) {
            epoch.seconds = *seconds;
        }
        first_epoch = state.epochs_done;
        files = state.files;
        if config.progress != Progress::Quiet {
            println!(
                "continuing from the checkpoint of epoch {first_epoch} in {}",
                dir.display()
            );
        }
    }
    let mut cadence = checkpoint::Cadence::new(
        ctx.checkpoints
            .as_ref()
            .map_or(CheckpointEvery::default(), |c| c.every),
    );
    let mut best_unsaved = false;
    for epoch in first_epoch..config.epochs {
        let started = Instant::now();
        // Dropout masks derive from (seed, epoch) alone, as in sora-train's loop, through a
        // generator of this run's own.
        let mut rng = ChaCha8Rng::seed_from_u64(
            config.seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let mut state: Option<LmState> = None;
        let mut loss_sum = Tensor::<1>::zeros([1], &train_device);
        let mut count = 0usize;
        let mut start = 0;
        while start + 1 < len {
            let t = config.seq_len.min(len - 1 - start);
            let input = Tensor::<2, Int>::from_data(
                TensorData::new(block(&data, n_streams, len, start, t), [n_streams, t]),
                &train_device,
            );
            let target = Tensor::<1, Int>::from_data(
                TensorData::new(block(&data, n_streams, len, start + 1, t), [n_streams * t]),
                &train_device,
            );
            let (logits, next) = model.forward_train(input, state, &mut rng);
            let loss = loss_fn.forward(logits.reshape([n_streams * t, vocab]), target);
            loss_sum = loss_sum + loss.clone().detach() * (n_streams * t) as f32;
            count += n_streams * t;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(config.lr, model, grads);
            state = Some(next.detach());
            start += t;
        }
        let train_loss = loss_sum.into_scalar::<f32>() as f64 / count.max(1) as f64;
        let valid = model.valid();
        let (held_loss, _) = evaluate(&valid, &held_ids, n_streams, config.seq_len, device);
        let seconds = started.elapsed().as_secs_f64();
        let improved = best.as_ref().is_none_or(|(loss, _, _)| held_loss < *loss);
        if show {
            let metrics = LmMetrics::new(held_loss, 0, config.tokens);
            let bits = metrics
                .bits_per_char
                .map(|b| format!("  bits/char {b:.3}"))
                .unwrap_or_default();
            println!(
                "epoch {:>3}/{}  train loss {train_loss:.4}  held-out loss {held_loss:.4}  perplexity {:.3}{bits}  {seconds:.1}s{}",
                epoch + 1,
                config.epochs,
                metrics.perplexity,
                if improved { "  *" } else { "" }
            );
        }
        history.epochs.push(EpochRecord {
            epoch: epoch + 1,
            lr: config.lr,
            train_loss,
            valid_loss: Some(held_loss),
            valid_accuracy: None,
            seconds,
        });
        if improved {
            best = Some((held_loss, epoch + 1, valid));
            best_unsaved = true;
        }
        if let Some(dir) = &checkpoints
            && cadence.due(epoch + 1 == config.epochs)
        {
            let (best_loss, best_epoch, best_model) = best.as_ref().expect("an epoch ran");
            let old = files.write(
                dir,
                epoch + 1,
                model.clone().into_record(),
                &optimizer,
                best_unsaved.then(|| best_model.clone().into_record()),
            )?;
            let state = RunState {
                config: config.clone(),
                epochs_done: epoch + 1,
                best_epoch: *best_epoch,
                best_loss: *best_loss,
                history: history.clone(),
                seconds: history.epochs.iter().map(|e| e.seconds).collect(),
                files: files.clone(),
            };
            write_state(dir, &state)?;
            files.remove_stale(dir, &old);
            best_unsaved = false;
        }
    }
    let (_, best_epoch, model) = best.expect("at least one epoch ran");
    // Every epoch runs (no early stop); the weights kept are the best epoch's.
    history.best_epoch = Some(best_epoch);
    let (held_loss, held_count) = evaluate(&model, &held_ids, n_streams, config.seq_len, device);
    let baselines = ngram_baselines(&train_ids, &held_ids, vocab, config.tokens);
    Ok(GenerateRun {
        config: config.clone(),
        saved: SavedGenerator {
            tokens: config.tokens,
            tokenizer: config.tokenizer.clone(),
            vocabulary,
            model: lm_config,
        },
        model,
        history,
        best_epoch,
        held_out: LmMetrics::new(held_loss, held_count, config.tokens),
        baselines,
        train_tokens: train_ids.len(),
        held_out_tokens: held_ids.len(),
        streams: n_streams,
    })
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).expect("plain data serialises to JSON")
}

impl GenerateRun {
    /// Saves the model directory ([`GENERATOR_FILE`], weights, options, held-out metrics,
    /// history and learning curves); an existing directory is replaced only once everything
    /// has been written.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let metrics = SavedMetrics {
            held_out: self.held_out,
            baselines: self.baselines,
            best_epoch: self.best_epoch,
        };
        let info = describe(&self.saved, self.model.num_params());
        ModelDir::new(dir).save_with(&info.manifest(), |staging| {
            let write = |file: &str, bytes: &[u8]| {
                let path = staging.join(file);
                write_atomic(&path, bytes).map_err(|source| TrainError::Io { file: path, source })
            };
            write(GENERATOR_FILE, &to_json(&self.saved))?;
            save_safetensors(&self.model, &staging.join(files::WEIGHTS))?;
            write(files::TRAIN, &to_json(&self.config))?;
            write(files::METRICS, &to_json(&metrics))?;
            self.history.save_json(&staging.join(files::HISTORY))?;
            self.history.save_timings(&staging.join(files::TIMINGS))?;
            self.history.plot_png(&staging.join(files::CURVES))?;
            Ok(())
        })?;
        Ok(())
    }

    /// The trained model with its text side, as [`Generator::load`] would read it back.
    pub fn to_generator(&self, device: &Device) -> Result<Generator> {
        Generator::new(self.saved.clone(), self.model.clone(), device)
    }
}
