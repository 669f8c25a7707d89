use faer::linalg::matmul::triangular::{matmul as tmm, BlockStructure};
use faer::{Accum, Mat, MatRef, Par};
use std::time::Instant;
fn main() {
    let (t, m) = (1024usize, 2000usize);
    let ks: Vec<f64> = (0..t * m).map(|i| ((i * 7919) % 1000) as f64 / 1000.0).collect();
    let k = MatRef::from_row_major_slice(&ks, t, m);
    let kc = k.to_owned(); // column-major copy
    let mut s = Mat::<f64>::zeros(m, m);
    for (name, par) in [("seq", Par::Seq), ("rayon", Par::rayon(0))] {
        let st = Instant::now();
        for _ in 0..5 { tmm(s.as_mut(), BlockStructure::TriangularLower, Accum::Add, k.transpose(), BlockStructure::Rectangular, k, BlockStructure::Rectangular, 1.0, par); }
        let e = st.elapsed().as_secs_f64() / 5.0;
        println!("tri rowmajor {name}: {:.3}s {:.1} GFMA/s", e, (t * m * m) as f64 / 2.0 / e / 1e9);
        let st = Instant::now();
        for _ in 0..5 { tmm(s.as_mut(), BlockStructure::TriangularLower, Accum::Add, kc.transpose(), BlockStructure::Rectangular, kc.as_ref(), BlockStructure::Rectangular, 1.0, par); }
        let e = st.elapsed().as_secs_f64() / 5.0;
        println!("tri colmajor {name}: {:.3}s {:.1} GFMA/s", e, (t * m * m) as f64 / 2.0 / e / 1e9);
        let st = Instant::now();
        for _ in 0..5 { faer::linalg::matmul::matmul(s.as_mut(), Accum::Add, kc.transpose(), kc.as_ref(), 1.0, par); }
        let e = st.elapsed().as_secs_f64() / 5.0;
        println!("full colmajor {name}: {:.3}s {:.1} GFMA/s(full)", e, (t * m * m) as f64 / e / 1e9);
    }
}
