//! Class labels that spell the same number are one class.

use sora_data::{FittedPipeline, PipelineConfig, Table, TargetValues, encode_target};

#[test]
fn minus_zero_and_one_point_zero_are_the_classes_zero_and_one() {
    // 0 written as `0` and `-0`, 1 as `1` and `1.0`, 2 only as `2`.
    let mut csv = String::from("x,y\n");
    let spellings = ["0", "-0", "0", "1", "1.0", "1", "2", "2", "0", "1"];
    for (i, y) in spellings.iter().cycle().take(60).enumerate() {
        csv.push_str(&format!("{},{y}\n", i as f64 / 10.0));
    }
    let table = Table::from_reader(csv.as_bytes(), "labels.csv").unwrap();
    let config = PipelineConfig::new("y");
    let target = encode_target(&table, &config).unwrap();
    assert_eq!(target.classes.as_deref().unwrap(), ["0", "1", "2"]);
    let TargetValues::Classes(labels) = &target.targets else {
        panic!("a classification target");
    };
    let expected: Vec<usize> = spellings
        .iter()
        .cycle()
        .take(60)
        .map(|y| y.parse::<f64>().unwrap() as usize)
        .collect();
    assert_eq!(labels, &expected);

    let rows: Vec<usize> = (0..table.n_rows()).collect();
    let pipeline = FittedPipeline::fit(&table, &rows, &config).unwrap();
    assert_eq!(pipeline.classes().unwrap(), ["0", "1", "2"]);
}

#[test]
fn labels_that_are_not_all_numbers_are_kept_as_written() {
    let csv = "x,y\n1,a\n2,-0\n3,0\n4,a\n5,0\n6,-0\n";
    let table = Table::from_reader(csv.as_bytes(), "mixed.csv").unwrap();
    let target = encode_target(&table, &PipelineConfig::new("y")).unwrap();
    assert_eq!(target.classes.as_deref().unwrap(), ["-0", "0", "a"]);
}
