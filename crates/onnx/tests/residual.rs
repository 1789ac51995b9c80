//! Residual networks through ONNX: ResNets of the zoo with random weights
//! (ResNet-20 among them) and shortcuts of every kind export and import back
//! unchanged; graphs edited away from the supported form are refused naming
//! the node.

use prost::Message;

use ppdnn_model::float::FloatModel;
use ppdnn_model::network::{Network, Pool, PoolKind, Shape, Shortcut};
use ppdnn_model::testing::{random_float_model, random_residual_network};
use ppdnn_model::zoo;
use ppdnn_onnx::proto::ModelProto;
use ppdnn_onnx::{Error, ImportOptions, export, import};

fn round_trip(model: &FloatModel, what: &str) {
    let back = import(&export(model), &ImportOptions::default()).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(&back.model, model, "{what}");
    assert!(back.notes.is_empty(), "{what}: {:?}", back.notes);
}

#[test]
fn zoo_resnets_round_trip() {
    let nets = [
        ("resnet 3x8x8 [2, 4] x2", zoo::resnet(Shape::new(3, 8, 8), &[2, 4], 2, 3)),
        ("resnet 1x12x10 [3, 5, 2] x1", zoo::resnet(Shape::new(1, 12, 10), &[3, 5, 2], 1, 4)),
        ("resnet20", zoo::resnet20()),
    ];
    for (seed, (what, net)) in nets.into_iter().enumerate() {
        assert!(net.layers().iter().any(|l| l.shortcut_projection().is_some()), "{what}");
        round_trip(&random_float_model(net, seed as u64 + 7), what);
    }
    for seed in 0..40 {
        round_trip(&random_float_model(random_residual_network(seed), seed), &format!("random {seed}"));
    }
}

/// Shortcuts the zoo does not make: from the layer just before (identity,
/// and a projection reading the same value as the convolution), on a layer
/// without ReLU and with max pooling, and on a layer with a bias map.
#[test]
fn other_shortcuts_round_trip() {
    let mut layers = vec![
        zoo::conv("stem", 3, 3, 1, 1),
        zoo::conv("a", 3, 3, 1, 1),
        zoo::conv("b", 5, 1, 2, 0),
        zoo::conv("c", 5, 3, 1, 1),
        zoo::dense("fc", 2, false),
    ];
    layers[1].shortcut = Some(Shortcut { from: "stem".into(), projection: None });
    layers[2].shortcut = Some(Shortcut { from: "a".into(), projection: Some([2, 2]) });
    layers[3].shortcut = Some(Shortcut { from: "stem".into(), projection: Some([2, 2]) });
    layers[3].relu = false;
    layers[3].pool = Some(Pool { kind: PoolKind::Max, window: [2, 2], stride: [1, 1] });
    let net = Network::new(Shape::new(2, 6, 6), layers).unwrap();
    let mut model = random_float_model(net.clone(), 3);
    let map = net.shapes()[3].output.len();
    model.layers[3].bias = (0..map).map(|i| i as f32 * 0.01).collect();
    let model = FloatModel::new(net, model.layers).unwrap();
    round_trip(&model, "other shortcuts");
}

/// The exported ResNet's graph, edited by `edit`, and the refusal's node.
fn refused(edit: impl Fn(&mut ModelProto)) -> (String, String) {
    let model = random_float_model(zoo::resnet(Shape::new(2, 8, 8), &[2, 4], 2, 3), 5);
    let mut proto = ModelProto::decode(&export(&model)[..]).unwrap();
    edit(&mut proto);
    match import(&proto.encode_to_vec(), &ImportOptions::default()) {
        Err(e @ Error::Unsupported { .. }) => {
            let Error::Unsupported { node, .. } = &e else { unreachable!() };
            (node.clone(), e.to_string())
        }
        other => panic!("{other:?}"),
    }
}

/// Sets input `i` of the node named `name`.
fn set_input(proto: &mut ModelProto, name: &str, i: usize, value: &str) {
    let graph = proto.graph.as_mut().unwrap();
    let node = graph.node.iter_mut().find(|n| n.name() == name).unwrap();
    node.input[i] = value.into();
}

#[test]
fn shortcuts_of_other_forms_are_refused_naming_the_node() {
    // The graph's input is no layer's activation.
    let (node, e) = refused(|p| set_input(p, "s1b2.conv2.add", 1, "input"));
    assert_eq!(node, "s1b2.conv2.add", "{e}");
    assert!(e.contains("not an earlier layer's activation"), "{e}");
    // A 2-channel activation added to a 4-channel output.
    let (node, e) = refused(|p| set_input(p, "s2b2.conv2.add", 1, "stem.relu"));
    assert!(node == "s2b2.conv2.add" && e.contains("adds a 2x8x8 shortcut to a 4x4x4 output"), "{e}");
    // A projection with padding.
    let (node, e) = refused(|p| {
        let graph = p.graph.as_mut().unwrap();
        let conv = graph.node.iter_mut().find(|n| n.name() == "s2b1.conv2.shortcut").unwrap();
        conv.attribute.iter_mut().find(|a| a.name() == "pads").unwrap().ints = vec![1; 4];
    });
    assert!(node == "s2b1.conv2.shortcut" && e.contains("1x1 convolution without padding"), "{e}");
    // An Add after the ReLU: the shortcut goes before it.
    let (node, e) = refused(|p| {
        let graph = p.graph.as_mut().unwrap();
        let [add, relu] = ["s1b1.conv2.add", "s1b1.conv2.relu"]
            .map(|n| graph.node.iter().position(|x| x.name() == n).unwrap());
        graph.node[relu].input[0] = "s1b1.conv2.out".into();
        graph.node[relu].output[0] = "early".into();
        graph.node[add].input[0] = "early".into();
        // The next layers read the sum, under the ReLU's name.
        graph.node[add].output[0] = "s1b1.conv2.relu".into();
        graph.node.swap(add, relu);
    });
    assert!(node == "s1b1.conv2.add" && e.contains("before its ReLU"), "{e}");
    // An Add of two values, neither the data path's last.
    let (node, e) = refused(|p| set_input(p, "s1b2.conv2.add", 0, "stem.relu"));
    assert!(node == "s1b2.conv2.add" && e.contains("neither of which"), "{e}");
}
