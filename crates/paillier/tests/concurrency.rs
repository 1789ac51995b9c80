//! Sessions that share a key build its fixed-base table at the same time,
//! from inside a rayon pool (as the server's compute pool runs them). The
//! table's own construction is parallel: if it ran under the key's lock, a
//! worker waiting for part of it could steal another session's job and block
//! on that lock for good. This test hangs, and so fails, if that comes back.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use ppdnn_paillier::{Backend, KeyPolicy, PublicKey, set_backend};

#[test]
fn sessions_sharing_a_key_build_its_table_concurrently_without_deadlock() {
    // The GMP table is the parallel one; this process runs nothing else.
    set_backend(Backend::Gmp).unwrap();
    let pair = common::key1024();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        for _ in 0..20 {
            // A fresh key value: its table is not built yet; every clone shares it.
            let public = pair.public();
            let key = PublicKey::new(public.n().clone(), public.hn().cloned(), KeyPolicy::INSECURE_TESTING)
                .unwrap();
            // Each session hands its round to the pool from its own thread.
            std::thread::scope(|scope| {
                for _ in 0..8 {
                    scope.spawn(|| {
                        pool.install(|| {
                            let session = key.clone();
                            session.precompute_randomness(6);
                            assert!(session.has_randomness_table());
                            assert!(session.random_rn().unwrap() > 1);
                        })
                    });
                }
            });
            assert!(key.has_randomness_table());
        }
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(Duration::from_secs(120))
        .expect("building a shared key's table from many pool jobs at once deadlocked");
}
