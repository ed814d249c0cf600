//! perpetual 2.3 on a churnguard feature split dumped by
//! `bench/peers/dump_split.py`: fits on the training rows with the given
//! budget (2 threads, categorical inputs declared unless `NOCAT` is set),
//! prints one JSON line with the fit seconds and the test ROC-AUC.
use perpetual::objective::Objective;
use perpetual::{Matrix, PerpetualBooster};
use std::collections::HashSet;
use std::time::Instant;

fn read_f64(path: &str) -> Vec<f64> {
    let b = std::fs::read(path).unwrap();
    b.chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn auc(y: &[f64], p: &[f64]) -> f64 {
    let mut idx: Vec<usize> = (0..y.len()).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    // rank with ties averaged
    let mut ranks = vec![0.0; y.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && p[idx[j + 1]] == p[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[idx[k]] = r;
        }
        i = j + 1;
    }
    let pos = y.iter().filter(|&&v| v == 1.0).count() as f64;
    let neg = y.len() as f64 - pos;
    let sum: f64 = ranks
        .iter()
        .zip(y)
        .filter(|(_, &v)| v == 1.0)
        .map(|(r, _)| r)
        .sum();
    (sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let budget: f32 = std::env::args()
        .nth(2)
        .unwrap_or("0.5".into())
        .parse()
        .unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/meta.json")).unwrap())
            .unwrap();
    let cols = meta["cols"].as_u64().unwrap() as usize;
    let cats: HashSet<usize> = meta["cat"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let t0 = Instant::now();
    let xtr = read_f64(&format!("{dir}/xtr.bin"));
    let ytr = read_f64(&format!("{dir}/ytr.bin"));
    let xte = read_f64(&format!("{dir}/xte.bin"));
    let yte = read_f64(&format!("{dir}/yte.bin"));
    eprintln!("read {:.2?}", t0.elapsed());
    let train = Matrix::new(&xtr, ytr.len(), cols);
    let test = Matrix::new(&xte, yte.len(), cols);
    let t = Instant::now();
    let mut b = PerpetualBooster::default()
        .set_objective(Objective::LogLoss)
        .set_budget(budget)
        .set_num_threads(Some(2))
        .set_categorical_features(if std::env::var("NOCAT").is_ok() {
            None
        } else {
            Some(cats)
        });
    b.fit(&train, &ytr, None, None).unwrap();
    let fit = t.elapsed().as_secs_f64();
    let p = b.predict_proba(&test, true, false);
    println!(
        "{{\"budget\": {budget}, \"fit_seconds\": {fit:.3}, \"test_auc\": {:.4}, \"trees\": {}}}",
        auc(&yte, &p),
        b.get_prediction_trees().len()
    );
}
