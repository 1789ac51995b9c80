//! The JavaScript face of the client (wasm32 only): a `WebClient` that a
//! Web Worker drives. Every method returns JSON text or throws an Error
//! whose message is meant for the page.

use std::collections::HashMap;
use std::sync::Arc;

use ppdnn_protocol::Plan;
use ppdnn_wire::pb;
use ppdnn_wire::pb::inference_client::InferenceClient;
use serde_json::json;
use wasm_bindgen::prelude::*;

use crate::core::{Core, parse_mode};

type Grpc = InferenceClient<tonic_web_wasm_client::Client>;

fn js(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn status(s: tonic::Status) -> JsError {
    JsError::new(&format!("server: {} ({:?})", s.message(), s.code()))
}

/// The browser client of one server.
#[wasm_bindgen]
pub struct WebClient {
    core: Core,
    grpc: Grpc,
    /// Checked descriptions by (model, mode, key bits).
    described: HashMap<(String, String, u32), (pb::ModelDescription, Arc<Plan>)>,
}

#[wasm_bindgen]
impl WebClient {
    /// A client of the server at `server` (its base URL, e.g. the page's
    /// own origin).
    #[wasm_bindgen(constructor)]
    pub fn new(server: &str) -> WebClient {
        let grpc = InferenceClient::new(tonic_web_wasm_client::Client::new(
            server.trim_end_matches('/').to_string(),
        ));
        WebClient { core: Core::default(), grpc, described: HashMap::new() }
    }

    /// The server's models: JSON `[{name, dataset, digest, modes}]`.
    pub async fn models(&self) -> Result<String, JsError> {
        let mut grpc = self.grpc.clone();
        let list = grpc.list_models(pb::ListModelsRequest {}).await.map_err(status)?.into_inner();
        let models: Vec<_> = list
            .models
            .iter()
            .map(|m| {
                let modes: Vec<&str> = m
                    .modes
                    .iter()
                    .filter_map(|&v| ppdnn_wire::convert::mode_from_pb(v).ok())
                    .map(|m| m.name())
                    .collect();
                json!({"name": m.name, "dataset": m.dataset, "digest": m.digest, "modes": modes})
            })
            .collect();
        Ok(serde_json::Value::from(models).to_string())
    }

    /// A model's description for `mode` at `bits`: JSON `{name, dataset,
    /// input_shape, classes, rounds}`.
    pub async fn describe(&mut self, model: String, mode: String, bits: u32) -> Result<String, JsError> {
        let (desc, plan) = self.described(&model, &mode, bits).await?;
        Ok(json!({
            "name": desc.name,
            "dataset": desc.dataset,
            "input_shape": plan.input_shape,
            "classes": desc.classes,
            "rounds": plan.layers.len(),
        })
        .to_string())
    }

    async fn described(
        &mut self,
        model: &str,
        mode: &str,
        bits: u32,
    ) -> Result<(pb::ModelDescription, Arc<Plan>), JsError> {
        let key = (model.to_string(), mode.to_string(), bits);
        if let Some(found) = self.described.get(&key) {
            return Ok(found.clone());
        }
        let m = parse_mode(mode).map_err(js)?;
        let req = pb::DescribeModelRequest {
            model: model.to_string(),
            key_bits: bits,
            packing: pb::Packing::Packed as i32,
            mode: ppdnn_wire::convert::mode_to_pb(m),
        };
        let desc = self.grpc.describe_model(req).await.map_err(status)?.into_inner();
        let plan = Core::plan(&desc, bits, m).map_err(js)?;
        self.described.insert(key, (desc.clone(), plan.clone()));
        Ok((desc, plan))
    }

    /// Makes a new key of `bits` bits; `progress(fraction, step)` is
    /// called as it goes.
    #[wasm_bindgen(js_name = generateKey)]
    pub fn generate_key(&mut self, bits: u32, progress: &js_sys::Function) -> Result<(), JsError> {
        let mut report = |fraction: f64, step: &str| {
            // A progress callback that throws does not stop the work.
            let _ = progress.call2(&JsValue::NULL, &JsValue::from(fraction), &JsValue::from(step));
        };
        self.core.generate_key(bits, &mut report).map_err(js)
    }

    /// The key as JSON (with its secret), for the page's storage.
    #[wasm_bindgen(js_name = keyJson)]
    pub fn key_json(&self) -> Result<String, JsError> {
        self.core.key_json().map_err(js)
    }

    /// Loads a key saved with `keyJson`.
    #[wasm_bindgen(js_name = loadKey)]
    pub fn load_key(&mut self, json: &str) -> Result<(), JsError> {
        self.core.load_key(json).map_err(js)
    }

    /// The key's size in bits, or undefined without a key.
    #[wasm_bindgen(js_name = keyBits)]
    pub fn key_bits(&self) -> Option<u32> {
        self.core.key_bits()
    }

    /// Does the offline work of the next inference of `model` in `mode`
    /// (randomness, proofs); returns the milliseconds it took.
    pub async fn prepare(&mut self, model: String, mode: String) -> Result<f64, JsError> {
        let bits = self.core.key_bits().ok_or_else(|| js(crate::core::WebError::NoKey))?;
        let (desc, plan) = self.described(&model, &mode, bits).await?;
        let t = js_sys::Date::now();
        self.core.prepare(&desc, &plan).map_err(js)?;
        Ok(js_sys::Date::now() - t)
    }

    /// Classifies `pixels` (the model's input, 0..255, channel by channel)
    /// in `mode`: JSON of the report (label, class, logits, scores, times,
    /// bytes, what the server saw).
    pub async fn classify(
        &mut self,
        model: String,
        mode: String,
        pixels: Vec<u8>,
    ) -> Result<String, JsError> {
        let bits = self.core.key_bits().ok_or_else(|| js(crate::core::WebError::NoKey))?;
        let (desc, plan) = self.described(&model, &mode, bits).await?;
        let grpc = self.grpc.clone();
        let call = move |req: pb::InferStepRequest| {
            let mut g = grpc.clone();
            async move { g.infer_step(req).await.map(tonic::Response::into_inner) }
        };
        let report = self.core.classify(&desc, plan, &pixels, call, js_sys::Date::now).await.map_err(js)?;
        serde_json::to_string(&report).map_err(js)
    }
}

/// The model input (channels x height x width, 0..255) that `ppdnn
/// predict` would make of this PNG: the same Rust code, so the page and
/// the command line see the same pixels.
#[wasm_bindgen(js_name = pixelsFromPng)]
pub fn pixels_from_png(png: &[u8], channels: usize, height: usize, width: usize) -> Result<Vec<u8>, JsError> {
    ppdnn_model::image_io::decode_png_as(png, [channels, height, width]).map_err(js)
}

/// Where the browser's time goes: milliseconds per operation of this
/// build's arithmetic at `bits` (a key is made for it), as JSON
/// `{keygen_ms, table_ms, rn_ms, encrypt_online_ms, decrypt_ms}`.
#[wasm_bindgen(js_name = benchArithmetic)]
pub fn bench_arithmetic(bits: u32, reps: u32) -> Result<String, JsError> {
    use ppdnn_paillier::{Integer, KeyPolicy, generate_keypair};
    let now = js_sys::Date::now;
    let reps = reps.max(1);
    let t = now();
    let pair = generate_keypair(bits, KeyPolicy::admitting(bits)).map_err(js)?;
    let keygen_ms = now() - t;
    let pk = pair.public();
    let t = now();
    pk.precompute_randomness(5);
    let _ = pk.random_rn_many(1).map_err(js)?;
    let table_ms = now() - t;
    let t = now();
    let rns = pk.random_rn_many(reps as usize).map_err(js)?;
    let rn_ms = (now() - t) / f64::from(reps);
    let t = now();
    let cts: Vec<_> = rns
        .iter()
        .map(|rn| pk.encrypt_with_rn(&Integer::from(12345), rn))
        .collect::<Result<_, _>>()
        .map_err(js)?;
    let encrypt_online_ms = (now() - t) / f64::from(reps);
    let t = now();
    let _ = pair.private.decrypt_many(&cts);
    let decrypt_ms = (now() - t) / f64::from(reps);
    Ok(serde_json::json!({
        "bits": bits, "keygen_ms": keygen_ms, "table_ms": table_ms, "rn_ms": rn_ms,
        "encrypt_online_ms": encrypt_online_ms, "decrypt_ms": decrypt_ms,
        "backend": ppdnn_paillier::Backend::current().name(),
    })
    .to_string())
}
