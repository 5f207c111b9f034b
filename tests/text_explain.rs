//! Token attributions: integrated gradients at the embedding output of a text model that has
//! learned that token 3 decides the class — the token gets the largest score, and the scores
//! add up to the change of the output (completeness).

use sora::core::{HeadSpec, ModelSpec, Task};
use sora::device::test_device;
use sora::jobs::text::explain::token_attributions;
use sora::text::{Cell, SeqPool, TextSpec};
use sora::train::{OptimizerConfig, Progress, Targets, TokenData, TrainConfig, Trainer};

#[test]
fn the_deciding_token_gets_the_largest_attribution() {
    let device = test_device();
    let (len, n) = (8, 400);
    let mut state = 99u64;
    let mut next = |m: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % m
    };
    let (mut ids, mut mask, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let real = 3 + next(6) as usize;
        let mut doc: Vec<usize> = (0..real).map(|_| 4 + next(26) as usize).collect();
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
        ids.clone(),
        mask.clone(),
        len,
        Targets::Classes {
            labels,
            n_classes: 2,
        },
    )
    .unwrap();
    let spec = TextSpec::bag(30, len, 8)
        .with_rnn(Cell::Gru, 12, 1, false)
        .with_pool(SeqPool::Max);
    let checked = ModelSpec::new(
        spec,
        HeadSpec::new(&[8]),
        Task::Classification { n_classes: 2 },
    )
    .check()
    .unwrap();
    let config = TrainConfig::new(30, 32, 0.01)
        .with_optimizer(OptimizerConfig::adam())
        .with_seed(5)
        .with_progress(Progress::Quiet);
    let trainer = Trainer::new(config, &device);
    let model = trainer
        .fit(trainer.init(&checked), &data, None)
        .unwrap()
        .model;
    assert!(trainer.evaluate(&model, &data).unwrap().accuracy().unwrap() > 0.95);

    // A document with token 3 at position 2 of 5.
    let doc = [7, 12, 3, 20, 9, 0, 0, 0];
    let doc_mask = [true, true, true, true, true, false, false, false];
    let a = token_attributions(&model, &doc, &doc_mask, 1, 64, &device).unwrap();
    assert_eq!(a.scores.len(), 5);
    let top = (0..5)
        .max_by(|&i, &j| a.scores[i].total_cmp(&a.scores[j]))
        .unwrap();
    assert_eq!(top, 2, "{:?}", a.scores);
    let total: f32 = a.scores.iter().sum();
    assert!(
        a.delta.abs() < 0.05 * total.abs().max(1.0),
        "delta {} of {total}",
        a.delta
    );
}
