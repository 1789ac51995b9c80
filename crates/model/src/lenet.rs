//! LeNet-5, the network ppdnn trains itself, and helpers every model uses.
//!
//! conv 5x5x6 (pad 2), ReLU, 2x2 average pool, conv 5x5x16, ReLU, 2x2 average
//! pool, fc 400-120, ReLU, fc 120-84, ReLU, fc 84-10
//! ([`Network::lenet5`](crate::network::Network::lenet5)).
//! Average pooling: it reaches the accuracy target and it is linear, so the
//! model-private mode's circuits only add; a max pool costs a comparison
//! per window value there.

/// Index of the largest value (the first one on ties).
pub fn argmax<T: PartialOrd + Copy>(xs: &[T]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}
