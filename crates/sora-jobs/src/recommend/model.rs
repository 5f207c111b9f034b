//! The recommender as the program trains, saves and loads it.

#[allow(unused_imports)]
use super::*;
use burn::module::Module;

use crate::kind::{CommonOptions, DataSource, JobConfig, Kind, LoopDefaults, RunContext, Trained};
use crate::model::{
    Batch, ColumnType, Evaluation, Input, InputColumn, InputSchema, ModelInfo, OutputKind, Outputs,
    Rows,
};
use crate::{UserItems, Verb};

/// The file of a recommender's model directory that holds its ids, histories, baselines
/// and test scores.
pub const RECOMMENDER_FILE: &str = "recommender.json";
/// The ranking model's spec inside a recommender's model directory.
pub const RANKING_SPEC_FILE: &str = "ranking_spec.json";
/// The ranking model's weights inside a recommender's model directory.
pub const RANKING_WEIGHTS_FILE: &str = "ranking.safetensors";

/// What the saved models scored on the test part when they were trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestScores {
    /// The rating model on the held-out ratings, beside its baselines.
    pub ratings: RatingsEvaluation,
    /// The ranking model on each user's last interaction, beside popularity.
    pub ranking: Option<RankingTest>,
}

/// The ranking model's leave-last-out test scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RankingTest {
    /// The cut-off.
    pub k: usize,
    /// Users evaluated.
    pub n_users: usize,
    /// The model's HR@k and NDCG@k.
    pub model: RankScores,
    /// The popularity ranking's.
    pub popularity: RankScores,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedRecommender {
    range: RatingRange,
    users: Vec<String>,
    items: Vec<String>,
    rated: Vec<Vec<usize>>,
    baseline: BiasBaseline,
    test: TestScores,
    ranking: Option<SavedRanking>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedRanking {
    users: Vec<String>,
    items: Vec<String>,
    seen: Vec<Vec<usize>>,
    popularity: Vec<usize>,
    n_users_total: usize,
}

/// A recommender as the `sora` program trains, saves and loads it: the rating model and,
/// when the ratings have timestamps, the ranking model.
///
/// The model directory is a rating model's [`ModelDir`](sora_train::ModelDir) (`spec.json`,
/// `model.safetensors`, `train.json`) plus [`RECOMMENDER_FILE`] and, with a ranking model,
/// [`RANKING_SPEC_FILE`] and [`RANKING_WEIGHTS_FILE`]; an existing directory is replaced only
/// once everything has been written.
#[derive(Debug)]
pub struct RecommenderModel {
    /// Predicts ratings; ranks items when there is no ranking model.
    pub rating: RatingModel,
    /// Ranks unseen items by probability of interaction.
    pub ranking: Option<Recommender>,
    /// Test scores at training time.
    pub test: TestScores,
    info: ModelInfo,
}

/// Trains what [`RecommenderModel`] holds: [`fit_ratings`], then [`fit_ranking`] when the
/// ratings have timestamps.
pub fn train(
    ratings: &Ratings,
    config: &RecommendConfig,
    device: &Device,
) -> Result<(RatingsReport, Option<RankingReport>, RecommenderModel)> {
    train_in(ratings, config, &RunContext::quiet(device.clone()))
}

/// [`train`] in a run's context: its device and checkpoints.
fn train_in(
    ratings: &Ratings,
    config: &RecommendConfig,
    ctx: &RunContext,
) -> Result<(RatingsReport, Option<RankingReport>, RecommenderModel)> {
    let (report, rating) = super::rating::fit_ratings_in(ratings, config, ctx)?;
    let (ranking_report, ranking) = match ratings.timestamps {
        Some(_) => {
            let (r, m) = super::ranking::fit_ranking_in(ratings, config, ctx)?;
            (Some(r), Some(m))
        }
        None => (None, None),
    };
    let test = TestScores {
        ratings: RatingsEvaluation {
            n: report.n_test,
            n_fallback: report.n_fallback,
            model: report.model,
            bias: report.bias,
            global_mean: report.global_mean,
        },
        ranking: ranking_report.as_ref().map(|r| RankingTest {
            k: r.k,
            n_users: r.n_users_tested,
            model: r.model,
            popularity: r.popularity,
        }),
    };
    let model = RecommenderModel::new(rating, ranking, test);
    Ok((report, ranking_report, model))
}

impl RecommenderModel {
    /// A recommender from its models.
    pub fn new(rating: RatingModel, ranking: Option<Recommender>, test: TestScores) -> Self {
        let mut summary = format!("rating model:\n{}", rating.spec.summary());
        let mut parameters = rating.model.num_params();
        if let Some(k) = &ranking {
            summary.push_str(&format!("\nranking model:\n{}", k.spec.summary()));
            parameters += k.model.num_params();
        }
        let id = |name: &str| InputColumn {
            name: name.to_string(),
            kind: ColumnType::Id,
            categories: None,
            missing: "not accepted".into(),
            missing_marker: None,
        };
        let info = ModelInfo {
            kind: Recommend::NAME.to_string(),
            output: OutputKind::Ratings {
                range: rating.range,
            },
            target: None,
            input: InputSchema::Columns {
                columns: vec![id("user"), id("item")],
            },
            summary,
            parameters,
        };
        Self {
            rating,
            ranking,
            test,
            info,
        }
    }

    /// The `n` best unseen items for `user`: by the ranking model when there is one, else by
    /// predicted rating; an unknown user gets the most popular items.
    pub fn recommend(&self, user: &str, n: usize) -> Result<Recommendations> {
        match &self.ranking {
            Some(r) => r.predict(user, n),
            None => self.rating.recommend(user, n),
        }
    }

    /// The items `user` chose that most support recommending `item` (see
    /// [`Recommender::supporting_items`]), from the model that ranks.
    pub fn supporting_items(&self, user: &str, item: &str, k: usize) -> Result<Vec<Recommended>> {
        match &self.ranking {
            Some(r) => r.supporting_items(user, item, k),
            None => self.rating.supporting_items(user, item, k),
        }
    }

    /// Saves the model directory (see the type's documentation).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let r = &self.rating;
        let saved = SavedRecommender {
            range: r.range,
            users: r.users.names().to_vec(),
            items: r.items.names().to_vec(),
            rated: r.rated.clone(),
            baseline: r.baseline.clone(),
            test: self.test.clone(),
            ranking: self.ranking.as_ref().map(|k| SavedRanking {
                users: k.users.names().to_vec(),
                items: k.items.names().to_vec(),
                seen: k
                    .seen
                    .iter()
                    .map(|s| {
                        let mut v: Vec<usize> = s.iter().copied().collect();
                        v.sort_unstable();
                        v
                    })
                    .collect(),
                popularity: k.popularity.clone(),
                n_users_total: k.n_users_total,
            }),
        };
        let mut extra = vec![(
            RECOMMENDER_FILE,
            serde_json::to_vec(&saved).expect("plain data serialises to JSON"),
        )];
        if let Some(k) = &self.ranking {
            extra.push((
                RANKING_SPEC_FILE,
                k.spec.spec().to_json_string().into_bytes(),
            ));
            extra.push((
                RANKING_WEIGHTS_FILE,
                sora_core::weights::to_safetensors_bytes(&k.model)?,
            ));
        }
        sora_train::ModelDir::new(dir).save(
            &self.info.manifest(),
            &r.spec,
            &r.model,
            &r.train_config,
            None,
            None,
            &extra,
        )?;
        Ok(())
    }

    /// Reads a model directory written by [`save`](Self::save), checking that its files
    /// agree (id counts against the specs' table sizes).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let model_dir = sora_train::ModelDir::new(dir);
        let bad = |message: String| RecommendError::ModelDir {
            dir: dir.display().to_string(),
            message,
        };
        let saved: SavedRecommender = model_dir
            .read_json(RECOMMENDER_FILE)?
            .ok_or_else(|| bad(format!("no {RECOMMENDER_FILE}: not a recommender")))?;
        let loaded = model_dir.load::<RatingsSpec>(device)?;
        let ids = |names: Vec<String>, what: &str| {
            IdIndex::from_names(names).ok_or_else(|| bad(format!("{what} ids repeat")))
        };
        let fits = |spec: &RatingsSpec, users: &IdIndex, items: &IdIndex, rows: usize| {
            if spec.n_users as usize != users.len() || spec.n_items as usize != items.len() {
                return Err(bad(format!(
                    "the spec takes {} users and {} items, {RECOMMENDER_FILE} lists {} and {}",
                    spec.n_users,
                    spec.n_items,
                    users.len(),
                    items.len()
                )));
            }
            if rows != users.len() {
                return Err(bad(format!(
                    "{RECOMMENDER_FILE}: {rows} item histories for {} users",
                    users.len()
                )));
            }
            Ok(())
        };
        let in_range = |lists: &[Vec<usize>], n: usize| {
            if lists.iter().flatten().any(|&i| i >= n) {
                return Err(bad(format!(
                    "{RECOMMENDER_FILE}: an item history names an item beyond the {n} known"
                )));
            }
            Ok(())
        };
        let (users, items) = (ids(saved.users, "user")?, ids(saved.items, "item")?);
        fits(
            &loaded.spec.spec().encoder,
            &users,
            &items,
            saved.rated.len(),
        )?;
        in_range(&saved.rated, items.len())?;
        if saved.baseline.user.len() != users.len() || saved.baseline.item.len() != items.len() {
            return Err(bad(format!(
                "{RECOMMENDER_FILE}: the baseline's sizes disagree"
            )));
        }
        let device = device.clone().without_autodiff();
        let rating = RatingModel {
            spec: loaded.spec,
            model: loaded.model,
            users,
            items,
            rated: saved.rated,
            baseline: saved.baseline,
            range: saved.range,
            train_config: loaded
                .train_config
                .unwrap_or_else(|| TrainConfig::new(1, 1, 1e-3)),
            device: device.clone(),
        };
        let ranking = match saved.ranking {
            None => None,
            Some(k) => {
                let spec =
                    ModelSpec::<RatingsSpec>::from_file(dir.join(RANKING_SPEC_FILE))?.check()?;
                let model = sora_core::weights::load_safetensors(
                    spec.init(&device),
                    &dir.join(RANKING_WEIGHTS_FILE),
                )?;
                let (users, items) = (ids(k.users, "ranking user")?, ids(k.items, "ranking item")?);
                fits(&spec.spec().encoder, &users, &items, k.seen.len())?;
                in_range(&k.seen, items.len())?;
                if k.popularity.len() != items.len() {
                    return Err(bad(format!(
                        "{RECOMMENDER_FILE}: popularity of {} items for {} items",
                        k.popularity.len(),
                        items.len()
                    )));
                }
                Some(Recommender {
                    spec,
                    model,
                    users,
                    items,
                    seen: k
                        .seen
                        .into_iter()
                        .map(|v| v.into_iter().collect())
                        .collect(),
                    popularity: k.popularity,
                    n_users_total: k.n_users_total,
                    device: device.clone(),
                })
            }
        };
        Ok(Self::new(rating, ranking, saved.test))
    }
}

impl RatingsEvaluation {
    /// The scores as an aligned text table, beside the baselines.
    pub fn table(&self) -> String {
        let mut out = format!(
            "  {} ratings, {} with a user or item unknown to the model (predicted by the bias baseline)\n",
            self.n, self.n_fallback
        );
        out.push_str(&format!("  {:<12} {:>8} {:>8}\n", "", "RMSE", "MAE"));
        for (name, e) in [
            ("model", self.model),
            ("bias", self.bias),
            ("global mean", self.global_mean),
        ] {
            out.push_str(&format!("  {name:<12} {:>8.4} {:>8.4}\n", e.rmse, e.mae));
        }
        out
    }
}

impl JobConfig for RecommendConfig {
    fn check(&self) -> crate::Result<()> {
        fraction("test_fraction", self.test_fraction)?;
        fraction("valid_fraction", self.valid_fraction)?;
        if self.patience == 0 {
            return Err(JobError::invalid(
                "patience",
                "at least 1 (recommenders stop early on the validation part)",
                0,
            ));
        }
        Ok(())
    }
}

/// The `ratings` kind.
#[derive(Debug, Clone, Copy)]
pub struct Recommend;

/// The options of `sora train --ratings`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Ratings (--task ratings, or --ratings)")]
pub struct RatingsOptions {
    /// Ratings: the declared range `MIN-MAX` (e.g. `0.5-5`); a rating outside it is an error
    /// naming its line [default: the data's minimum and maximum].
    #[arg(long)]
    pub rating_range: Option<RatingRange>,
}

/// A finished run of the `ratings` kind: both models and what they measured.
#[derive(Debug)]
pub struct RecommendRun {
    /// The rating model's report.
    pub rating: RatingsReport,
    /// The ranking model's report, when the ratings have timestamps.
    pub ranking: Option<RankingReport>,
    /// The models, as saved.
    pub model: RecommenderModel,
    /// The seed of the run.
    pub seed: u64,
}

impl Kind for Recommend {
    const ENSEMBLES: bool = false;
    const NAME: &'static str = "ratings";
    const ABOUT: &'static str =
        "user,item,rating[,timestamp] rows: a rating model and a top-N ranker";
    type Config = RecommendConfig;
    type Options = RatingsOptions;
    type Data = Ratings;
    type Run = RecommendRun;
    type Model = RecommenderModel;

    fn defaults() -> LoopDefaults {
        let c = RecommendConfig::default();
        LoopDefaults {
            epochs: c.epochs,
            batch_size: c.batch_size,
            lr: c.lr,
            optimizer: None,
            patience: Some(c.patience),
        }
    }

    fn configure(
        mut config: RecommendConfig,
        common: &CommonOptions,
        o: RatingsOptions,
    ) -> crate::Result<RecommendConfig> {
        // Ratings are not calibrated, thresholded or given conformal intervals.
        common.decision()?.refuse(Self::NAME)?;
        CommonOptions::refuse(
            Self::NAME,
            &[
                ("--valid-fraction", common.valid_fraction.is_some()),
                ("--test-fraction", common.test_fraction.is_some()),
            ],
        )?;
        if common.optimizer.is_some() {
            return Err(JobError::OptionNotForKind {
                option: "--optimizer".into(),
                reason: "recommenders train with Adam and weight decay (set in the library's \
                         RecommendConfig)"
                    .into(),
            });
        }
        CommonOptions::refuse(
            Self::NAME,
            &[
                ("--hidden", common.hidden.is_some()),
                ("--dropout", common.dropout.is_some()),
                ("--spec", common.spec.is_some()),
                ("--target", common.target.is_some()),
                ("--seq-len", common.seq_len.is_some()),
                ("--embed", common.embed.is_some()),
                ("--min-count", common.min_count.is_some()),
            ],
        )?;
        config.seed = common.seed;
        config.progress = common.progress.into();
        config.rating_range = o.rating_range;
        config.epochs = common.epochs.unwrap_or(config.epochs);
        config.batch_size = common.batch_size.unwrap_or(config.batch_size);
        config.lr = common.lr.unwrap_or(config.lr);
        config.patience = common.patience.unwrap_or(config.patience);
        Ok(config)
    }

    fn load_data(
        config: &RecommendConfig,
        source: &DataSource,
        ctx: &RunContext,
    ) -> crate::Result<Ratings> {
        ctx.single_device("recommenders")?;
        let data = source.data()?;
        let ratings = Ratings::read_csv(data, config.rating_range)?;
        ctx.say(format!(
            "{}: {} ratings, {} users, {} items, range {}–{}{}",
            data.display(),
            ratings.len(),
            ratings.n_users(),
            ratings.n_items(),
            ratings.range.min,
            ratings.range.max,
            if config.rating_range.is_some() {
                " (declared)"
            } else {
                " (observed)"
            }
        ));
        Ok(ratings)
    }

    fn train(
        config: &RecommendConfig,
        ratings: Ratings,
        ctx: &RunContext,
    ) -> crate::Result<RecommendRun> {
        let (rating, ranking, model) = train_in(&ratings, config, ctx)?;
        Ok(RecommendRun {
            rating,
            ranking,
            model,
            seed: config.seed,
        })
    }

    fn load(dir: &Path, device: &Device) -> crate::Result<RecommenderModel> {
        Ok(RecommenderModel::load(dir, device)?)
    }
}

impl Trained for RecommendRun {
    fn report(&self) -> String {
        let rating = &self.rating;
        let mut out = format!(
            "\nrating model: {} train, {} validation, {} test ratings (seeded random split, seed {}); damping λ = {}\n",
            rating.n_train, rating.n_valid, rating.n_test, self.seed, rating.damping
        );
        out.push_str(&format!("\n{}\n", rating.summary));
        out.push_str(&format!(
            "best epoch {} (validation RMSE {:.4}), {:.1} s\n",
            rating.best_epoch, rating.valid_rmse, rating.seconds
        ));
        out.push_str(&self.model.test.ratings.table());
        match &self.ranking {
            Some(r) => {
                out.push_str(&format!(
                    "\nranking model: {} interactions and {} sampled negatives; each user's last interaction held out; best epoch {}, {:.1} s\n",
                    r.n_positives,
                    r.n_samples - r.n_positives,
                    r.best_epoch,
                    r.seconds
                ));
                out.push_str(&format!(
                    "  {} users, held-out item among {} candidates ({} skipped: item unseen in training)\n",
                    r.n_users_tested, r.n_candidates, r.n_users_skipped
                ));
                out.push_str(&format!(
                    "  {:<12} {:>8} {:>8}\n",
                    "",
                    format!("HR@{}", r.k),
                    format!("NDCG@{}", r.k)
                ));
                for (name, s) in [("model", r.model), ("popularity", r.popularity)] {
                    out.push_str(&format!("  {name:<12} {:>8.4} {:>8.4}\n", s.hit_rate, s.ndcg));
                }
            }
            None => out.push_str(
                "\nno timestamp column: no ranking model; `sora predict --user` ranks items by predicted rating\n",
            ),
        }
        out
    }

    fn save(&self, dir: &Path) -> crate::Result<()> {
        Ok(self.model.save(dir)?)
    }
}

impl crate::Model for RecommenderModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn prepare(&self, input: &Input) -> crate::Result<Batch> {
        let table = input.table(Recommend::NAME)?;
        let pairs = sora_data::rating_pairs(&table)?;
        Ok(Batch {
            key: "row",
            keys: (1..=pairs.len()).map(|r| r.to_string()).collect(),
            rows: Rows::Pairs(pairs),
            notes: Vec::new(),
            drift: None,
        })
    }

    fn score(&self, batch: &Batch) -> crate::Result<Outputs> {
        let Rows::Pairs(pairs) = &batch.rows else {
            return Err(JobError::WrongInput {
                what: "the batch".into(),
                kind: Recommend::NAME.into(),
                expected: "(user, item) pairs".into(),
            });
        };
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(u, i)| (u.as_str(), i.as_str()))
            .collect();
        let predicted = self.rating.predict(&refs)?;
        Ok(Outputs::Ratings {
            users: pairs.iter().map(|(u, _)| u.clone()).collect(),
            items: pairs.iter().map(|(_, i)| i.clone()).collect(),
            ratings: predicted.iter().map(|p| p.value).collect(),
            fallback: predicted.iter().map(|p| p.fallback).collect(),
        })
    }

    fn evaluate(&self, input: &Input) -> crate::Result<Evaluation> {
        let table = input.table(Recommend::NAME)?;
        let ratings = Ratings::from_table(&table, Some(self.rating.range()))?;
        let scores = self.rating.evaluate(&ratings)?;
        Ok(Evaluation {
            n: ratings.len(),
            report: format!(
                "{}: {} ratings\n{}",
                table.source(),
                ratings.len(),
                scores.table()
            ),
            scores: vec![
                ("rmse".to_string(), scores.model.rmse),
                ("mae".to_string(), scores.model.mae),
                ("bias_rmse".to_string(), scores.bias.rmse),
                ("global_mean_rmse".to_string(), scores.global_mean.rmse),
            ],
            notes: Vec::new(),
        })
    }

    fn recommend(
        &self,
        users: &[String],
        n: usize,
        because: usize,
    ) -> crate::Result<Vec<UserItems>> {
        let mut lists = Vec::with_capacity(users.len());
        for user in users {
            let list = RecommenderModel::recommend(self, user, n)?;
            let mut items = Vec::with_capacity(list.items.len());
            for r in list.items {
                let support = self
                    .supporting_items(user, &r.item, because)?
                    .into_iter()
                    .map(|s| s.item)
                    .collect();
                items.push(crate::Recommended {
                    item: r.item,
                    score: r.score,
                    because: support,
                });
            }
            lists.push(UserItems {
                user: user.clone(),
                items,
                popularity_fallback: list.popularity_fallback,
            });
        }
        Ok(lists)
    }

    fn hint(&self, verb: Verb) -> String {
        match verb {
            Verb::Explain => "; a recommendation comes with the rated items that support it: \
                              `sora predict --user ID`"
                .into(),
            _ => String::new(),
        }
    }
}
