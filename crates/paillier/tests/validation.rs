//! Every validation rule rejects what it should; serialization round trips.

mod common;

use common::key1024;
use ppdnn_paillier::keyfile::{
    private_key_from_json, private_key_to_json, public_key_from_json, public_key_to_json, read_private_key,
    write_private_key,
};
use ppdnn_paillier::{
    Error, Integer, KeyPolicy, PrivateKey, PublicKey, SlotCodec, generate_keypair, to_fixed_bytes,
};
use proptest::prelude::*;

const T: KeyPolicy = KeyPolicy::INSECURE_TESTING;

#[test]
fn public_key_rules() {
    let n = key1024().public().n().clone();
    assert!(PublicKey::new(n.clone(), None, T).is_ok());
    // Too small for production.
    assert!(matches!(PublicKey::new(n.clone(), None, KeyPolicy::PRODUCTION), Err(Error::KeySize { .. })));
    // Even.
    let even = Integer::from(&n + 1u32);
    assert!(
        matches!(PublicKey::new(even, None, T), Err(Error::InvalidPublicKey(m)) if m.to_string().contains("even"))
    );
    // Perfect square (of an odd number).
    let p = key1024().private.p().clone();
    let sq = p.clone().square();
    assert!(
        matches!(PublicKey::new(sq, None, T), Err(Error::InvalidPublicKey(m)) if m.to_string().contains("square"))
    );
    // Small factor.
    let small = Integer::from(&p * 7919u32);
    assert!(
        matches!(PublicKey::new(small, None, T), Err(Error::InvalidPublicKey(m)) if m.to_string().contains("small factor"))
    );
    // Prime.
    assert!(matches!(PublicKey::new(p, None, T), Err(Error::InvalidPublicKey(_))));
    // Negative.
    assert!(PublicKey::new(Integer::from(-&n), None, T).is_err());
    // Bad h^n.
    let n2 = Integer::from(&n * &n);
    assert!(PublicKey::new(n.clone(), Some(Integer::from(0)), T).is_err());
    assert!(PublicKey::new(n.clone(), Some(n2), T).is_err());
    assert!(PublicKey::new(n.clone(), Some(n.clone()), T).is_err());
}

#[test]
fn ciphertext_rules() {
    let pk = key1024().public();
    let n = pk.n().clone();
    assert!(pk.ciphertext(Integer::from(0)).is_err());
    assert!(pk.ciphertext(Integer::from(-5)).is_err());
    assert!(pk.ciphertext(pk.n_squared().clone()).is_err());
    assert!(pk.ciphertext(n.clone()).is_err(), "not coprime to n");
    assert!(pk.ciphertext(key1024().private.p().clone()).is_err(), "shares p");
    assert!(pk.ciphertext(Integer::from(2)).is_ok());
    // Bytes: wrong width, and the fixed width round trip.
    let c = pk.encrypt_i64(5).unwrap();
    let bytes = pk.ciphertext_to_bytes(&c);
    assert_eq!(bytes.len(), 256);
    assert_eq!(pk.ciphertext_from_bytes(&bytes).unwrap(), c);
    assert!(pk.ciphertext_from_bytes(&bytes[1..]).is_err());
    assert!(pk.ciphertext_from_bytes(&vec![0xff; 256]).is_err(), "above n^2");
    assert!(pk.ciphertext_from_decimal("12x").is_err());
    assert!(pk.ciphertext_from_decimal("").is_err());
}

/// Batches: every rule of a single ciphertext, with the coprimality checks
/// batched; the first bad one is named by its position.
#[test]
fn batch_ciphertext_rules() {
    let pk = key1024().public();
    let good: Vec<Vec<u8>> = (0..9).map(|v| pk.ciphertext_to_bytes(&pk.encrypt_i64(v).unwrap())).collect();
    let batch = |replace: &[(usize, Vec<u8>)]| -> Vec<u8> {
        let mut parts = good.clone();
        for (i, b) in replace {
            parts[*i] = b.clone();
        }
        parts.concat()
    };
    let all = pk.ciphertexts_from_bytes(&batch(&[])).unwrap();
    assert_eq!(all.len(), 9);
    for (c, b) in all.iter().zip(&good) {
        assert_eq!(pk.ciphertext_from_bytes(b).unwrap(), *c);
    }
    assert!(pk.ciphertexts_from_bytes(&[]).unwrap().is_empty());
    let p = to_fixed_bytes(key1024().private.p(), 256);
    let n = to_fixed_bytes(pk.n(), 256);
    for (replace, index, reason) in [
        (vec![(4, p.clone())], 4, "shares a factor"),
        (vec![(7, n.clone()), (2, p.clone())], 2, "shares a factor"),
        (vec![(3, vec![0xff; 256])], 3, "n^2"),
        (vec![(0, vec![0; 256])], 0, "not positive"),
        (vec![(8, p)], 8, "shares a factor"),
    ] {
        let e = pk.ciphertexts_from_bytes(&batch(&replace)).unwrap_err();
        assert_eq!(e.index, index, "{e}");
        assert!(
            e.to_string().contains(reason) && e.to_string().starts_with(&format!("ciphertext {index}: ")),
            "{e}"
        );
    }
    let e = pk.ciphertexts_from_bytes(&batch(&[])[1..]).unwrap_err();
    assert!(e.to_string().contains("bytes"), "{e}");
}

#[test]
fn private_key_rules() {
    let sk = &key1024().private;
    let (p, q) = (sk.p().clone(), sk.q().clone());
    assert!(PrivateKey::from_primes(p.clone(), p.clone(), None, T).is_err(), "p = q");
    assert!(PrivateKey::from_primes(p.clone(), Integer::from(&q + 2u32), None, T).is_err(), "q not prime");
    assert!(PrivateKey::from_primes(p.clone(), q.clone(), None, T).is_ok());
}

#[test]
fn key_generation_sizes() {
    assert!(generate_keypair(1000, T).is_err(), "not a multiple of 16");
    assert!(generate_keypair(1024, KeyPolicy::PRODUCTION).is_err(), "below policy");
    let pair = generate_keypair(512, T).unwrap();
    assert_eq!(pair.public().bits(), 512);
    assert_eq!(pair.public().ciphertext_bytes(), 128);
}

#[test]
fn key_files_round_trip_and_reject_damage() {
    let pair = key1024();
    let json = public_key_to_json(pair.public());
    assert_eq!(&public_key_from_json(&json, T).unwrap(), pair.public());
    let secret = private_key_to_json(&pair.private);
    let back = private_key_from_json(&secret, T).unwrap();
    assert_eq!(back.public_key(), pair.public());
    // A private key file yields its public half; a public one cannot decrypt.
    assert_eq!(&public_key_from_json(&secret, T).unwrap(), pair.public());
    assert!(private_key_from_json(&json, T).is_err());
    // Damage.
    assert!(public_key_from_json("{", T).is_err());
    assert!(public_key_from_json(&json.replace("ppdnn-paillier-public-key", "other"), T).is_err());
    assert!(public_key_from_json(&json.replace("\"version\": 1", "\"version\": 9"), T).is_err());
    assert!(public_key_from_json(&json.replace("\"bits\": 1024", "\"bits\": 2048"), T).is_err());
    let p = pair.private.p().to_string();
    assert!(private_key_from_json(&secret.replace(&p, "15"), T).is_err());
    // Debug never shows secrets.
    let shown = format!("{:?}", pair.private);
    assert!(!shown.contains(&p[..20]));
}

#[cfg(unix)]
#[test]
fn private_key_file_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("ppdnn-keytest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("key.json");
    std::fs::write(&path, "old").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    write_private_key(&path, &key1024().private).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(read_private_key(&path, T).unwrap().public_key(), key1024().public());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn slot_layouts() {
    assert!(SlotCodec::new(1, 4, 1024).is_err());
    assert!(SlotCodec::new(64, 4, 1024).is_err());
    assert!(SlotCodec::new(20, 0, 1024).is_err());
    assert_eq!(SlotCodec::max_slots(2048, 22), 93);
    assert!(SlotCodec::new(22, 94, 2048).is_err());
    let codec = SlotCodec::new(22, 93, 2048).unwrap();
    assert!(codec.encode(&[1 << 21]).is_err(), "value at the bound");
    assert!(codec.encode(&[-(1 << 21)]).is_err());
    assert!(codec.encode(&vec![0; 94]).is_err(), "too many values");
}

proptest! {
    #[test]
    fn slots_round_trip(b in 2u32..=40, raw in prop::collection::vec(any::<i64>(), 1..30)) {
        let s = SlotCodec::max_slots(1024, b).min(raw.len());
        let codec = SlotCodec::new(b, s, 1024).unwrap();
        let bound = codec.slot_bound();
        let vals: Vec<i64> = raw[..s].iter().map(|v| v % bound).collect();
        let m = codec.encode(&vals).unwrap();
        prop_assert_eq!(codec.decode(&m).unwrap(), vals);
    }

    #[test]
    fn slots_through_encryption(vals in prop::collection::vec(-(1i64 << 18)..(1i64 << 18), 1..40), k in -7i64..7) {
        let pair = key1024();
        let codec = SlotCodec::new(24, 40, 1024).unwrap();
        let c = pair.public().encrypt(&codec.encode(&vals).unwrap()).unwrap();
        let c = pair.public().mul_i64(&c, k);
        let c = pair.public().add(&c, &c);
        let got = codec.decode(&pair.private.decrypt(&c)).unwrap();
        let want: Vec<i64> = (0..40).map(|i| vals.get(i).copied().unwrap_or(0) * 2 * k).collect();
        prop_assert_eq!(got, want);
    }
}

#[test]
fn slot_overflow_out_of_the_top_is_an_error() {
    let codec = SlotCodec::new(8, 3, 1024).unwrap();
    // 127 * 4 overflows the top slot: something carries beyond the layout.
    let m = codec.encode(&[0, 0, 127]).unwrap() * 4u32;
    assert!(matches!(codec.decode(&m), Err(Error::SlotOverflow(_))));
}

#[test]
fn degenerate_randomness_bases_are_refused() {
    let pair = key1024();
    let (n, n2) = (pair.public().n().clone(), pair.public().n_squared().clone());
    let (p, q) = (pair.private.p().clone(), pair.private.q().clone());
    let refused = |hn: Integer, why: &str| match PublicKey::new(n.clone(), Some(hn), T) {
        Err(Error::InvalidPublicKey(m)) => assert!(m.to_string().contains(why), "{m}"),
        other => panic!("accepted a degenerate base ({why}): {other:?}"),
    };
    refused(Integer::from(1), "+-1");
    refused(Integer::from(&n2 - 1u32), "+-1");
    refused(Integer::from(&n + 1u32), "+-1"); // g itself: its powers shift the plaintext
    refused(Integer::from(&n2 - &n) - 1u32, "+-1");
    // A square root of 1 other than +-1: 1 mod p^2 and -1 mod q^2 (by CRT).
    let (p2, q2) = (p.clone().square(), q.clone().square());
    let inv = Integer::from(p2.invert_ref(&q2).unwrap());
    let t = ((Integer::from(&q2 - 2u32) * &inv) % &q2) * &p2 + 1u32;
    assert_eq!(Integer::from(t.pow_mod_ref(&Integer::from(2), &n2).unwrap()), 1);
    refused(t, "small order");
    // An element of order 3 exists when 3 divides p - 1 or q - 1; of order
    // 1009 likewise. Whatever the key, h^(p-1)(q-1)/k has order dividing k,
    // so take the order-killing exponent from the key itself.
    let phi = Integer::from(&p - 1u32) * Integer::from(&q - 1u32);
    let good = pair.public().hn().unwrap().clone();
    let mut small = Integer::from(good.pow_mod_ref(&Integer::from(&phi / 2u32), &n2).unwrap());
    if small == 1 {
        small = Integer::from(good.pow_mod_ref(&Integer::from(&phi / 4u32), &n2).unwrap());
    }
    if small != 1 {
        refused(small, "");
    }
    // The real base passes.
    assert!(PublicKey::new(n, Some(good), T).is_ok());
}

#[test]
fn primes_too_close_together_are_refused() {
    let p = key1024().private.p().clone();
    let q = p.next_prime_ref().into();
    match PrivateKey::from_primes(p, q, None, T) {
        Err(Error::InvalidPrivateKey(m)) => assert!(m.to_string().contains("Fermat"), "{m}"),
        other => panic!("accepted p and q a few units apart: {other:?}"),
    }
}

#[test]
fn key_file_errors_never_show_the_primes() {
    let pair = key1024();
    let json = private_key_to_json(&pair.private).to_string();
    let p = pair.private.p().to_string();
    // p with a stray letter, and p as a JSON number instead of a string.
    let damaged = json.replace(&p, &format!("{}x{}", &p[..50], &p[50..]));
    let as_number = json.replace(&format!("\"{p}\""), &p);
    for text in [damaged, as_number] {
        let e = private_key_from_json(&text, T).unwrap_err().to_string();
        assert!(!e.contains(&p[..12]) && !e.contains(&p[p.len() - 12..]), "the error shows p: {e}");
    }
}

#[test]
fn key_files_are_replaced_atomically_and_never_written_through_a_link() {
    let dir = std::env::temp_dir().join(format!("ppdnn-keyfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pair = key1024();
    // A link at the key's path to a file that must stay untouched.
    let target = dir.join("victim.txt");
    std::fs::write(&target, "keep me").unwrap();
    let path = dir.join("key.json");
    let _ = std::fs::remove_file(&path);
    std::os::unix::fs::symlink(&target, &path).unwrap();
    write_private_key(&path, &pair.private).unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
    assert_eq!(read_private_key(&path, T).unwrap().public_key(), pair.public());
    // Overwriting an existing key leaves no temporary file behind.
    write_private_key(&path, &pair.private).unwrap();
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // A write that fails (no such folder) reports the path and creates nothing.
    let missing = dir.join("no-such-dir").join("key.json");
    let e = write_private_key(&missing, &pair.private).unwrap_err().to_string();
    assert!(e.contains("no-such-dir"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
