//! The text job's options, its saved text side, and training.

#[allow(unused_imports)]
use super::*;
use crate::decision::{HeldOut, Scored};

/// The encoder architecture of the default model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum EncoderKind {
    /// A bag of embeddings (pooled embeddings, no recurrence).
    #[default]
    Bag,
    /// A bidirectional LSTM over the embeddings.
    Lstm,
    /// A bidirectional GRU over the embeddings.
    Gru,
}

/// Everything [`train`] needs besides the documents.
#[derive(Debug, Clone)]
pub struct TextConfig {
    /// How documents become tokens.
    pub tokenizer: TokenizerConfig,
    /// How the vocabulary is built from the training documents.
    pub vocab: VocabConfig,
    /// Tokens per document (`None`: the 95th percentile of training lengths, capped at
    /// `max_seq_len`).
    pub seq_len: Option<usize>,
    /// The cap of the automatic sequence length.
    pub max_seq_len: usize,
    /// Which end of a long document is kept.
    pub truncate: Truncate,
    /// The encoder.
    pub encoder: EncoderKind,
    /// Embedding width.
    pub d_embed: usize,
    /// Hidden width of each recurrent direction.
    pub d_hidden: usize,
    /// Pooling over time.
    pub pool: SeqPool,
    /// Dropout on the embeddings.
    pub dropout: f64,
    /// Hidden widths of the head.
    pub head: Vec<usize>,
    /// The training loop.
    pub train: TrainConfig,
    /// Fractions held out for validation (early stopping) and the final test.
    pub holdout: Holdout,
}

impl Default for TextConfig {
    /// Lower-cased words, every training token kept, 95th-percentile length capped at 64, a
    /// bag of 64-wide embeddings (mean pooling, dropout 0.25) and a linear head; Adam
    /// (learning rate 2e-3), batch 32, up to 40 epochs with early stopping (patience 5) on a
    /// 10 % validation split, 20 % test split, seed 42.
    fn default() -> Self {
        Self {
            tokenizer: TokenizerConfig::default(),
            vocab: VocabConfig::default(),
            seq_len: None,
            max_seq_len: 64,
            truncate: Truncate::Head,
            encoder: EncoderKind::Bag,
            d_embed: 64,
            d_hidden: 64,
            pool: SeqPool::Mean,
            dropout: 0.25,
            head: Vec::new(),
            train: TrainConfig::new(40, 32, 2e-3)
                .with_optimizer(sora_train::OptimizerConfig::adam())
                .with_early_stopping(5, EARLY_STOPPING_MIN_DELTA)
                .with_seed(crate::DEFAULT_SEED),
            holdout: Holdout {
                valid_fraction: 0.1,
                test_fraction: 0.2,
            },
        }
    }
}

/// The saved text side of a model: tokenizer, vocabulary, length, class names and columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedText {
    /// How documents become tokens.
    pub tokenizer: TokenizerConfig,
    /// The vocabulary of the training documents.
    pub vocabulary: Vocabulary,
    /// Tokens per document.
    pub seq_len: usize,
    /// Which end of a long document is kept.
    pub truncate: Truncate,
    /// Class names, in class-index order.
    pub classes: Vec<String>,
    /// The text column the model was trained on.
    pub text_column: String,
    /// The label column the model was trained on.
    pub target_column: String,
}

impl SavedText {
    /// Token ids and mask of `texts`, ready for the encoder, with `labels` (zeros when
    /// empty) as targets.
    pub fn encode(&self, texts: &[String], labels: &[usize]) -> Result<TokenData> {
        let tokenizer = Tokenizer::new(self.tokenizer.clone())?;
        let ids: Vec<Vec<usize>> = texts
            .iter()
            .map(|t| self.vocabulary.encode(&tokenizer.tokenize(t)))
            .collect();
        let batch = pad_batch(&ids, self.seq_len, self.truncate)?;
        let labels = if labels.is_empty() {
            vec![0; texts.len()]
        } else {
            labels.to_vec()
        };
        Ok(TokenData::new(
            batch.ids,
            batch.mask,
            batch.len,
            Targets::Classes {
                labels,
                n_classes: self.classes.len(),
            },
        )?)
    }
}

/// The 95th percentile of `lengths` (nearest rank), at least 1 and at most `cap`.
pub fn percentile_95(lengths: &[usize], cap: usize) -> usize {
    let mut sorted = lengths.to_vec();
    sorted.sort_unstable();
    let at = ((sorted.len() as f64 * 0.95).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
    sorted.get(at).copied().unwrap_or(1).clamp(1, cap.max(1))
}

/// The default model spec for a vocabulary of `vocab_size` and `n_classes` classes.
pub fn model_spec(
    config: &TextConfig,
    vocab_size: usize,
    seq_len: usize,
    n_classes: usize,
) -> ModelSpec<TextSpec> {
    let mut encoder = TextSpec::bag(vocab_size, seq_len, config.d_embed)
        .with_pool(config.pool)
        .with_dropout(config.dropout);
    match config.encoder {
        EncoderKind::Bag => {}
        EncoderKind::Lstm => encoder = encoder.with_rnn(Cell::Lstm, config.d_hidden, 1, true),
        EncoderKind::Gru => encoder = encoder.with_rnn(Cell::Gru, config.d_hidden, 1, true),
    }
    ModelSpec::new(
        encoder,
        HeadSpec::new(&config.head),
        Task::Classification {
            n_classes: n_classes as i64,
        },
    )
}

/// A finished run of the job.
#[derive(Debug)]
pub struct TextRun {
    /// The spec trained.
    pub spec: ModelSpec<TextSpec>,
    /// The trained model (the best epoch's weights).
    pub model: Model<TextEncoder>,
    /// Per-epoch history.
    pub history: History,
    /// Best epoch (1-based).
    pub best_epoch: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Metrics on the test documents (`None` for a model refitted on every document after
    /// cross-validation).
    pub test: Option<Metrics>,
    /// The text side, saved with the model.
    pub text: SavedText,
    /// The training config as run.
    pub train_config: TrainConfig,
    /// The split of the documents (indices into the data given to [`train`]).
    pub split: Split,
    /// Training documents cut to the sequence length.
    pub truncated: usize,
    /// Predictions of the validation and test documents.
    pub held_out: HeldOut,
}

/// The stratified, seeded split [`train`] uses.
pub fn split(data: &TextData, config: &TextConfig) -> Split {
    config.holdout.stratified(&data.labels, config.train.seed)
}

/// Splits `data` (stratified, seeded by the training seed), trains on the training part with
/// early stopping on the validation part and evaluates on the test part. `text_column` and
/// `target_column` are recorded in [`TEXT_FILE`].
pub fn train(
    data: &TextData,
    columns: (&str, &str),
    config: &TextConfig,
    device: &Device,
) -> Result<TextRun> {
    train_in(data, columns, config, &RunContext::quiet(device.clone()))
}

pub(super) fn train_in(
    data: &TextData,
    columns: (&str, &str),
    config: &TextConfig,
    ctx: &RunContext,
) -> Result<TextRun> {
    if data.classes.len() < 2 {
        return Err(TextJobError::TooFewClasses {
            file: data.source.clone(),
            column: columns.1.to_string(),
            n_classes: data.classes.len(),
            classes: data.classes.clone(),
        });
    }
    let split = match &ctx.split {
        Some(parts) => {
            crate::kind::check_parts(parts, data.len())
                .map_err(|e| TextJobError::Split(Box::new(e)))?;
            parts.clone()
        }
        None => {
            let split = split(data, config);
            config
                .holdout
                .require_parts(&split, Some(&data.labels))
                .map_err(|e| TextJobError::Split(Box::new(e)))?;
            split
        }
    };
    let tokenizer = Tokenizer::new(config.tokenizer.clone())?;
    let train_tokens: Vec<Vec<String>> = split
        .train
        .iter()
        .map(|&i| tokenizer.tokenize(&data.texts[i]))
        .collect();
    let vocabulary = Vocabulary::build(train_tokens.iter().map(Vec::as_slice), &config.vocab);
    let lengths: Vec<usize> = train_tokens.iter().map(Vec::len).collect();
    let seq_len = config
        .seq_len
        .unwrap_or_else(|| percentile_95(&lengths, config.max_seq_len))
        .max(1);
    let truncated = lengths.iter().filter(|&&l| l > seq_len).count();
    let text = SavedText {
        tokenizer: config.tokenizer.clone(),
        vocabulary,
        seq_len,
        truncate: config.truncate,
        classes: data.classes.clone(),
        text_column: columns.0.to_string(),
        target_column: columns.1.to_string(),
    };
    let part = |rows: &[usize]| {
        let sub = data.subset(rows);
        text.encode(&sub.texts, &sub.labels)
    };
    let train_data = part(&split.train)?;
    let valid_data = (!split.valid.is_empty())
        .then(|| part(&split.valid))
        .transpose()?;
    let test_data = (!split.test.is_empty())
        .then(|| part(&split.test))
        .transpose()?;
    let spec = model_spec(config, text.vocabulary.len(), seq_len, data.classes.len());
    let checked = spec.check()?;
    let mut train_config = config.train.clone();
    if valid_data.is_none() {
        train_config.early_stopping = None;
    }
    let trainer = ctx.trainer("train", train_config.clone())?;
    let fitted = trainer.fit_or_resume(trainer.init(&checked), &train_data, valid_data.as_ref())?;
    let score = |part: Option<TokenData>| {
        part.map(|p| Scored::of(&trainer, &fitted.model, &p))
            .transpose()
    };
    let mut held_out = HeldOut::parts(score(valid_data)?, score(test_data)?);
    held_out.classes = Some(data.classes.clone());
    let test = held_out.test.as_ref().map(Scored::metrics);
    let Fitted {
        model,
        history,
        best_epoch,
        stopped_early,
    } = fitted;
    Ok(TextRun {
        spec,
        model,
        history,
        best_epoch,
        stopped_early,
        test,
        text,
        train_config,
        split,
        truncated,
        held_out,
    })
}

impl TextRun {
    /// Saves the model directory: manifest, spec, weights, [`TEXT_FILE`], training config,
    /// test metrics, history and learning curves; an existing directory is replaced only once
    /// everything has been written.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(&self.text).expect("the text pipeline serialises");
        let checked = self.spec.check()?;
        let info = model::describe(
            &self.text,
            &checked.summary().to_string(),
            self.model.num_params(),
        );
        ModelDir::new(dir).save(
            &info.manifest(),
            &checked,
            &self.model,
            &self.train_config,
            self.test.as_ref(),
            Some(&self.history),
            &[(TEXT_FILE, text)],
        )?;
        Ok(())
    }

    /// The trained model with its text side, as [`TextModel::load`] would read it back.
    pub fn to_model(&self, device: &Device) -> TextModel {
        // The spec was checked before training; a failure cannot happen here.
        let summary = self
            .spec
            .check()
            .map(|c| c.summary().to_string())
            .unwrap_or_default();
        TextModel::new(self.text.clone(), self.model.clone(), summary, device)
    }
}

impl Trained for TextRun {
    fn report(&self) -> String {
        crate::outcome(
            self.best_epoch,
            self.history.epochs.len(),
            self.stopped_early,
            self.test.as_ref(),
            Some(&self.text.classes),
        )
    }

    fn save(&self, dir: &Path) -> crate::Result<()> {
        Ok(TextRun::save(self, dir)?)
    }

    fn test_metrics(&self) -> Option<&sora_train::Metrics> {
        self.test.as_ref()
    }

    fn held_out(&self) -> crate::decision::HeldOut {
        self.held_out.clone()
    }
}
