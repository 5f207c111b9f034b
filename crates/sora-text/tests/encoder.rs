//! The text encoders: summaries that match the allocated modules, pooling that ignores
//! padding, spec errors naming the field, and a bag of embeddings and an LSTM that learn.

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::{Int, TensorData};
use sora_core::{Encoder, EncoderSpec, HeadSpec, ModelSpec, Task, Tokens};
use sora_text::{Cell, SeqPool, TextSpec};

fn classify(n: i64) -> Task {
    Task::Classification { n_classes: n }
}

fn tokens(ids: &[i64], mask: &[f32], len: usize, device: &Device) -> Tokens {
    let n = ids.len() / len;
    Tokens {
        ids: Tensor::<2, Int>::from_data(TensorData::new(ids.to_vec(), [n, len]), device),
        mask: Tensor::from_data(TensorData::new(mask.to_vec(), [n, len]), device),
    }
}

fn variants() -> Vec<TextSpec> {
    let bag = TextSpec::bag(50, 6, 8);
    vec![
        bag.clone(),
        bag.clone().with_pool(SeqPool::Max),
        bag.clone().with_pool(SeqPool::Attention),
        bag.clone()
            .with_rnn(Cell::Lstm, 5, 1, false)
            .with_pool(SeqPool::Last),
        bag.clone().with_rnn(Cell::Lstm, 5, 2, true),
        bag.clone()
            .with_rnn(Cell::Gru, 7, 1, false)
            .with_pool(SeqPool::Max),
        bag.with_rnn(Cell::Gru, 4, 2, true)
            .with_pool(SeqPool::Attention),
    ]
}

#[test]
fn summaries_count_what_the_encoders_allocate() {
    let device = sora_device::test_device();
    for spec in variants() {
        let checked = ModelSpec::new(spec.clone(), HeadSpec::new(&[4]), classify(2))
            .check()
            .unwrap();
        let model = checked.init(&device);
        assert_eq!(
            checked.summary().total_params,
            model.num_params() as u64,
            "{spec:?}\n{}",
            checked.summary()
        );
        let x = tokens(
            &[1, 2, 3, 0, 0, 0, 4, 5, 6, 7, 8, 9],
            &[1., 1., 1., 0., 0., 0., 1., 1., 1., 1., 1., 1.],
            6,
            &device,
        );
        assert_eq!(model.forward(x).dims(), [2, 2]);
    }
}

#[test]
fn padding_positions_do_not_change_the_features() {
    let device = sora_device::test_device();
    // Unidirectional and bag encoders read padding after the real tokens: whatever ids sit
    // there, masked out, the features are the same.
    for spec in variants()
        .into_iter()
        .filter(|s| !s.rnn.as_ref().is_some_and(|r| r.bidirectional))
    {
        let encoder = spec.init(&device);
        let mask = [1., 1., 1., 0., 0., 0.];
        let a = encoder.forward(tokens(&[7, 8, 9, 0, 0, 0], &mask, 6, &device));
        let b = encoder.forward(tokens(&[7, 8, 9, 31, 2, 44], &mask, 6, &device));
        let diff = (a - b).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-6, "{spec:?}: {diff}");
    }
    // The masked mean of a bag is the mean of the real tokens' embeddings.
    let encoder = TextSpec::bag(20, 4, 3).init(&device);
    let table = encoder
        .embedding
        .weight
        .val()
        .try_into_vec_as::<f32>()
        .unwrap();
    let got = encoder
        .forward(tokens(&[2, 5, 0, 0], &[1., 1., 0., 0.], 4, &device))
        .try_into_vec_as::<f32>()
        .unwrap();
    for j in 0..3 {
        let want = (table[2 * 3 + j] + table[5 * 3 + j]) / 2.0;
        assert!((got[j] - want).abs() < 1e-6, "{got:?}");
    }
    // A document with no tokens pools to zeros, not to NaN.
    let empty = encoder.forward(tokens(&[0; 4], &[0.; 4], 4, &device));
    assert!(
        empty
            .try_into_vec_as::<f32>()
            .unwrap()
            .iter()
            .all(|v| *v == 0.0)
    );
}

#[test]
fn bad_specs_name_the_field() {
    let err = |spec: TextSpec| {
        ModelSpec::new(spec, HeadSpec::new(&[]), classify(2))
            .check()
            .unwrap_err()
            .to_string()
    };
    let mut s = TextSpec::bag(10, 5, 4);
    s.vocab_size = 0;
    assert!(err(s).contains("encoder.vocab_size"));
    let mut s = TextSpec::bag(10, 5, 4).with_rnn(Cell::Gru, 3, 1, false);
    s.rnn.as_mut().unwrap().layers = -1;
    let e = err(s);
    assert!(
        e.contains("(GRU)") && e.contains("encoder.rnn.layers"),
        "{e}"
    );
    assert!(err(TextSpec::bag(10, 5, 4).with_dropout(1.5)).contains("encoder.dropout"));
    let typo = ModelSpec::<TextSpec>::from_json_str(
        r#"{ "encoder": { "kind": "text", "vocab_size": 10, "seq_len": 5, "d_embed": 4,
              "rnn": { "cell": "lstm", "d_hiden": 3 } },
             "head": {}, "task": { "kind": "classification", "n_classes": 2 } }"#,
    );
    assert!(typo.is_err());
}

#[test]
fn encoders_learn_which_token_decides_the_class() {
    use sora_train::{OptimizerConfig, Progress, Targets, TokenData, TrainConfig, Trainer};
    // Documents of 2–8 random tokens from 3..40; class 1 when token 3 occurs.
    let (len, n) = (8, 600);
    let mut state = 12345u64;
    let mut next = |m: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % m
    };
    let (mut ids, mut mask, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let real = 2 + next(7) as usize;
        let mut doc: Vec<usize> = (0..real).map(|_| 4 + next(36) as usize).collect();
        let positive = next(2) == 1;
        if positive {
            doc[next(real as u64) as usize] = 3;
        }
        labels.push(usize::from(positive));
        for i in 0..len {
            ids.push(doc.get(i).copied().unwrap_or(0));
            mask.push(i < real);
        }
    }
    let data = TokenData::new(
        ids,
        mask,
        len,
        Targets::Classes {
            labels,
            n_classes: 2,
        },
    )
    .unwrap();
    let bag = TextSpec::bag(40, len, 8).with_pool(SeqPool::Max);
    let lstm = TextSpec::bag(40, len, 8)
        .with_rnn(Cell::Lstm, 16, 1, false)
        .with_pool(SeqPool::Max);
    for spec in [bag, lstm] {
        let checked = ModelSpec::new(spec.clone(), HeadSpec::new(&[8]), classify(2))
            .check()
            .unwrap();
        let config = TrainConfig::new(30, 32, 0.01)
            .with_optimizer(OptimizerConfig::adam())
            .with_seed(3)
            .with_progress(Progress::Quiet);
        let trainer = Trainer::new(config, &sora_device::test_device());
        let fitted = trainer.fit(trainer.init(&checked), &data, None).unwrap();
        let accuracy = trainer
            .evaluate(&fitted.model, &data)
            .unwrap()
            .accuracy()
            .unwrap();
        assert!(accuracy > 0.95, "{spec:?}: accuracy {accuracy}");
    }
}
