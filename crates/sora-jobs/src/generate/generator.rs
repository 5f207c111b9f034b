//! A language model read back from its directory, writing text.

#[allow(unused_imports)]
use super::*;

/// A language model read back from its directory, ready to write.
#[derive(Debug, Clone)]
pub struct Generator {
    /// The text side.
    pub saved: SavedGenerator,
    /// The model, without autodiff.
    pub model: LanguageModel,
    tokens: Tokens,
    line_break: usize,
    info: ModelInfo,
}

impl Generator {
    /// A generator from its parts; the model is moved to `device`.
    pub fn new(saved: SavedGenerator, model: LanguageModel, device: &Device) -> Result<Self> {
        let tokens = Tokens::new(saved.tokens, &saved.tokenizer)?;
        let line_break = saved.vocabulary.id(LINE_BREAK);
        let info = describe(&saved, model.num_params());
        Ok(Self {
            model: model.to_device(&device.clone().without_autodiff()),
            saved,
            tokens,
            line_break,
            info,
        })
    }

    /// Reads a model directory written by [`GenerateRun::save`], checking the weights'
    /// names and shapes against the saved model shape.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let model_dir = ModelDir::new(dir);
        let saved: SavedGenerator =
            model_dir
                .read_json(GENERATOR_FILE)?
                .ok_or_else(|| GenerateError::BadModelDir {
                    dir: dir.to_path_buf(),
                    reason: format!("no {GENERATOR_FILE}: not a language model directory"),
                })?;
        if saved.model.vocab_size != saved.vocabulary.len() {
            return Err(GenerateError::BadModelDir {
                dir: dir.to_path_buf(),
                reason: format!(
                    "{GENERATOR_FILE}: the vocabulary has {} tokens, the model {}",
                    saved.vocabulary.len(),
                    saved.model.vocab_size
                ),
            });
        }
        let plain = device.clone().without_autodiff();
        let model = saved.model.init(&plain)?;
        let model = load_safetensors(model, &dir.join(files::WEIGHTS))
            .map_err(|e| GenerateError::Train(e.into()))?;
        Self::new(saved, model, &plain)
    }

    /// The prompt's token ids, after the line-break token, and how many of them the
    /// vocabulary lacks (read as `<unk>`).
    pub fn encode_prompt(&self, prompt: &str) -> (Vec<usize>, usize) {
        let tokens = self.tokens.text(prompt);
        let mut ids = vec![self.line_break];
        ids.extend(self.saved.vocabulary.encode(&tokens));
        let unknown = ids.iter().filter(|&&id| id == Vocabulary::UNK).count();
        (ids, unknown)
    }

    /// Writes a continuation of `prompt`, handing each piece of text to `on_piece` as soon
    /// as its token is drawn (to stream it).
    ///
    /// The prompt is read as the start of a line, and may be of any length; see the module
    /// documentation.
    pub fn generate(
        &self,
        prompt: &str,
        options: &GenerateRequest,
        mut on_piece: impl FnMut(&str),
    ) -> crate::Result<Generated> {
        options.check()?;
        let sampling = SamplingConfig {
            temperature: options.temperature,
            top_k: options.top_k.map(|k| k as usize),
            top_p: options.top_p,
            max_tokens: options.max_tokens,
            stop_tokens: Vec::new(),
            seed: options.seed,
        };
        let mut sampler = Sampler::new(sampling).map_err(GenerateError::from)?;
        let (ids, unknown) = self.encode_prompt(prompt);
        let mut previous: Option<String> = match self.tokens.kind {
            // Words: a word that continues the prompt's last word is spaced from it.
            TokenKind::Word => ids
                .last()
                .and_then(|&id| self.saved.vocabulary.token(id))
                .map(str::to_string),
            TokenKind::Char => None,
        };
        let mut text = String::new();
        let mut stopped = false;
        let written = self
            .model
            .generate(&ids, &mut sampler, |id| {
                let token = self.saved.vocabulary.token(id).unwrap_or_default();
                let piece = self.tokens.piece(previous.as_deref(), token);
                on_piece(&piece);
                text.push_str(&piece);
                previous = Some(token.to_string());
                if options.stop.iter().any(|s| text.ends_with(s.as_str())) {
                    stopped = true;
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .map_err(GenerateError::from)?;
        Ok(Generated {
            text,
            tokens: written.len(),
            unknown,
            stopped,
        })
    }
}

impl Generator {
    /// The model's perplexity on a text (a plain UTF-8 file), read as it was trained: lines of
    /// tokens, each followed by the line break, in one stream with the state carried.
    pub fn evaluate_text(&self, corpus: &Corpus) -> Result<LmMetrics> {
        let mut ids = vec![self.line_break];
        for line in &corpus.lines {
            ids.extend(self.saved.vocabulary.encode(&self.tokens.line(line)));
            ids.push(self.line_break);
        }
        let device = self.model.embedding.weight.device();
        let (loss, count) = evaluate(&self.model, &ids, 1, 64, &device);
        Ok(LmMetrics::new(loss, count, self.saved.tokens))
    }
}

impl crate::Model for Generator {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn evaluate(&self, input: &Input) -> crate::Result<Evaluation> {
        let Input::Path { data, .. } = input else {
            return Err(input.wrong(Self::NAME_OF, "a plain UTF-8 text file"));
        };
        let corpus = load_text(data)?;
        let m = self.evaluate_text(&corpus)?;
        let bits = m
            .bits_per_char
            .map_or_else(String::new, |b| format!("   bits/char {b:.4}"));
        let mut scores = vec![
            ("loss".to_string(), m.loss),
            ("perplexity".to_string(), m.perplexity),
        ];
        scores.extend(m.bits_per_char.map(|b| ("bits_per_char".to_string(), b)));
        Ok(Evaluation {
            n: m.tokens,
            report: format!(
                "{} {} tokens predicted\nloss {:.4} nats/token   perplexity {:.4}{bits}\n",
                m.tokens, self.saved.tokens, m.loss, m.perplexity
            ),
            scores,
            notes: Vec::new(),
        })
    }

    fn generate(
        &self,
        request: &GenerateRequest,
        on_piece: &mut dyn FnMut(&str),
    ) -> crate::Result<Generated> {
        Generator::generate(self, &request.prompt, request, on_piece)
    }

    fn hint(&self, verb: Verb) -> String {
        match verb {
            Verb::Predict | Verb::Explain => {
                "; a language model writes text with `sora generate --model DIR`".into()
            }
            _ => String::new(),
        }
    }
}

impl Generator {
    const NAME_OF: &'static str = Generate::NAME;
}
