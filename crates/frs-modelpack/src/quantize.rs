//! Static int8 quantization of the converted recognizer, for ONNX Runtime's u8×s8 (VNNI) kernels.
//!
//! [`quantize`] turns the fp32 SFace into a QDQ model that ONNX Runtime fuses into `QLinearConv`
//! and `QLinearAdd`:
//!
//! 1. every BatchNormalization that alone reads a Conv's output is folded into that Conv;
//! 2. each PRelu (as the converter rewrites it) between two Convs has its channels equalized: the
//!    producer's output channel `c` is scaled by `m_c = min(R / r_c, 64)` (`r_c` its largest
//!    calibrated magnitude, `R` the largest over channels) and the consumer's input channel divided
//!    by it, which PRelu's positive homogeneity makes exact in fp32 and which lets one per-tensor
//!    u8 range fit every channel;
//! 3. every activation a Conv or an Add reads or writes gets one u8 range: the
//!    [`PERCENTILE`] of |x| over the calibration crops, clamped to the observed minimum and
//!    maximum (ONNX Runtime's `Percentile` calibration); a Relu after a Conv is fused into it
//!    (its output range starts at 0, so the quantization clamps as the Relu did). Activations of
//!    the first and the last stage stay fp32, and with them the layers reading or writing them:
//!    - at the input's full spatial size (112×112), with few channels, the int8 kernels were
//!      slower than fp32 (SFace 0.57–0.59× the fp32 time instead of 0.62–0.65×) and carried the
//!      largest errors;
//!    - the last stage (7×7, which the fully-connected layer reads) costs 1.1 ms more in fp32 and
//!      held 39 % of the int8 error (mean 1 − cosine to the fp32 features);
//! 4. weights become symmetric int8 per output channel, biases int32 at `s_in · s_w`;
//! 5. the fully-connected `Gemm` becomes `MatMulNBits` (com.microsoft) with u8 weights per block
//!    of [`FC_BLOCK`] inputs: it reads a quarter of the fp32 weight bytes, which bound its time.
//!
//! Calibrated on the sample photos, the features keep a mean cosine of 0.996 to the fp32 model's
//! on 1,000 LFW faces.

use std::collections::{HashMap, HashSet};

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;

use crate::proto::{
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TypeProto, ValueInfoProto, data_type,
    type_proto,
};
use crate::tensor::{self, TensorError};

/// Bumped whenever [`quantize`]'s output changes, so stamped int8 models are made again.
pub const QUANTIZER_REVISION: u32 = 2;

/// Share of |x| values an activation range keeps.
pub const PERCENTILE: f64 = 0.99999;
/// Bins of the |x| histogram the percentile is read from.
const HISTOGRAM_BINS: usize = 8192;
/// Largest factor a channel is scaled up by when equalizing.
const EQUALIZE_MAX: f32 = 64.0;
/// Inputs per block of the fully-connected layer's u8 weights (one scale and zero point each).
pub const FC_BLOCK: usize = 64;
/// ONNX Runtime's contrib operator domain, which holds `MatMulNBits`.
const MS_DOMAIN: &str = "com.microsoft";

/// Why a model could not be quantized.
#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    #[error(transparent)]
    Tensor(#[from] TensorError),
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    #[error("no calibration input")]
    NoCalibration,
    #[error("calibration: tensor `{0}` is not produced")]
    Missing(String),
}

fn runtime(e: impl std::fmt::Display) -> QuantizeError {
    QuantizeError::Runtime(e.to_string())
}

/// What [`quantize`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuantizeStats {
    pub batch_norms_folded: usize,
    pub prelus_equalized: usize,
    pub relus_fused: usize,
    pub convs_quantized: usize,
    pub adds_quantized: usize,
    pub activations_quantized: usize,
    pub gemms_blockwise: usize,
}

/// Calibration inputs: `count` samples of `shape` (without the batch dim), concatenated, in the
/// layout and value range the model is fed at run time.
#[derive(Debug, Clone, Copy)]
pub struct Calibration<'a> {
    pub input_name: &'a str,
    pub shape: &'a [usize],
    pub data: &'a [f32],
}

impl Calibration<'_> {
    fn samples(&self) -> impl Iterator<Item = &[f32]> {
        let len = self.shape.iter().product::<usize>().max(1);
        self.data.chunks_exact(len)
    }
}

/// Steps 1 and 2 of the module docs: the fp32 model with BatchNormalizations folded and channels
/// equalized across each PRelu. It computes the same function as `model` (up to rounding).
pub fn equalize_channels(
    model: &ModelProto,
    environment: &Environment,
    calibration: Calibration<'_>,
    stats: &mut QuantizeStats,
) -> Result<ModelProto, QuantizeError> {
    if calibration.samples().next().is_none() {
        return Err(QuantizeError::NoCalibration);
    }
    let mut model = model.clone();
    let graph = model.graph.get_or_insert_with(Default::default);
    stats.batch_norms_folded = fold_batch_norms(graph)?;
    let pairs = prelu_pairs(graph);
    let producers: Vec<String> = pairs.iter().map(|p| p.producer_output.clone()).collect();
    let magnitudes = channel_magnitudes(&model, environment, calibration, &producers)?;
    let graph = model.graph.get_or_insert_with(Default::default);
    for (pair, r) in pairs.iter().zip(&magnitudes) {
        equalize(graph, pair, r)?;
    }
    stats.prelus_equalized = pairs.len();
    Ok(model)
}

/// Quantizes `model` (see the module docs), calibrating on `calibration` with ONNX Runtime.
pub fn quantize(
    model: &ModelProto,
    environment: &Environment,
    calibration: Calibration<'_>,
) -> Result<(ModelProto, QuantizeStats), QuantizeError> {
    let mut stats = QuantizeStats::default();
    let mut model = equalize_channels(model, environment, calibration, &mut stats)?;
    let activations = activations_to_quantize(model.graph.get_or_insert_with(Default::default));
    let ranges = activation_ranges(&model, environment, calibration, &activations)?;
    let graph = model.graph.get_or_insert_with(Default::default);
    stats.relus_fused = fuse_conv_relus(graph, &ranges);
    insert_qdq(graph, &ranges, &mut stats)?;
    stats.gemms_blockwise = blockwise_gemms(graph)?;
    if stats.gemms_blockwise > 0 && !model.opset_import.iter().any(|o| o.domain.as_deref() == Some(MS_DOMAIN)) {
        model.opset_import.push(OperatorSetIdProto { domain: Some(MS_DOMAIN.to_owned()), version: Some(1) });
    }
    Ok((model, stats))
}

/// Node indices reading each value.
fn consumers(graph: &GraphProto) -> HashMap<&str, Vec<usize>> {
    let mut map: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, node) in graph.node.iter().enumerate() {
        for input in node.input.iter().filter(|s| !s.is_empty()) {
            map.entry(input.as_str()).or_default().push(i);
        }
    }
    map
}

fn initializer_index(graph: &GraphProto) -> HashMap<String, usize> {
    graph.initializer.iter().enumerate().map(|(i, t)| (t.label().to_owned(), i)).collect()
}

fn is_graph_output(graph: &GraphProto, name: &str) -> bool {
    graph.output.iter().any(|o| o.label() == name)
}

/// Folds `BatchNormalization(Conv(x, W, b))` into the Conv when the BN alone reads the Conv's
/// output and the Conv alone reads `W`: `W'[o] = W[o]·a_o`, `b'_o = (b_o − μ_o)·a_o + β_o` with
/// `a_o = γ_o / √(σ²_o + ε)`. Returns how many were folded.
fn fold_batch_norms(graph: &mut GraphProto) -> Result<usize, QuantizeError> {
    let mut folded = Vec::new();
    {
        let readers = consumers(graph);
        let inits = initializer_index(graph);
        for (bn_index, bn) in graph.node.iter().enumerate() {
            if !bn.is_onnx_op("BatchNormalization") || bn.input.len() != 5 || bn.output.len() != 1 {
                continue;
            }
            let x = bn.input[0].as_str();
            let Some(conv_index) =
                graph.node.iter().position(|n| n.is_onnx_op("Conv") && n.output.first().is_some_and(|o| o == x))
            else {
                continue;
            };
            let conv = &graph.node[conv_index];
            let sole_reader = |name: &str| readers.get(name).is_some_and(|r| r.len() == 1);
            let params_known = bn.input[1..].iter().all(|p| inits.contains_key(p.as_str()));
            if !sole_reader(x) || is_graph_output(graph, x) || !params_known {
                continue;
            }
            let Some(w) = conv.input.get(1).filter(|w| inits.contains_key(w.as_str()) && sole_reader(w)) else {
                continue;
            };
            let bias_ok = conv.input.get(2).is_none_or(|b| inits.contains_key(b.as_str()) && sole_reader(b));
            if bias_ok {
                folded.push((bn_index, conv_index, w.clone()));
            }
        }
    }
    let inits = initializer_index(graph);
    let value = |graph: &GraphProto, name: &str| tensor::float_values(&graph.initializer[inits[name]]);
    for &(bn_index, conv_index, ref w_name) in &folded {
        let bn = graph.node[bn_index].clone();
        let epsilon = bn.attr("epsilon").and_then(|a| a.f).unwrap_or(1e-5);
        let [gamma, beta, mean, var] = [1, 2, 3, 4].map(|i| value(graph, &bn.input[i]));
        let (gamma, beta, mean, var) = (gamma?, beta?, mean?, var?);
        let scale: Vec<f32> = gamma.iter().zip(&var).map(|(g, v)| g / (v + epsilon).sqrt()).collect();
        let w_tensor = &graph.initializer[inits[w_name.as_str()]];
        let w_dims = tensor::dims(w_tensor)?;
        let mut w = tensor::float_values(w_tensor)?;
        let per_out = w.len() / scale.len().max(1);
        for (row, s) in w.chunks_exact_mut(per_out).zip(&scale) {
            row.iter_mut().for_each(|v| *v *= s);
        }
        graph.initializer[inits[w_name.as_str()]] = tensor::float_tensor(w_name, &w_dims, &w);
        let conv = &graph.node[conv_index];
        let old_bias = match conv.input.get(2) {
            Some(b) => value(graph, b)?,
            None => vec![0.0; scale.len()],
        };
        let bias: Vec<f32> = (0..scale.len()).map(|o| (old_bias[o] - mean[o]) * scale[o] + beta[o]).collect();
        let bias_name = match conv.input.get(2) {
            Some(b) => b.clone(),
            None => format!("{}__bias", bn.output[0]),
        };
        let bias_tensor = tensor::float_tensor(&bias_name, &[bias.len()], &bias);
        match inits.get(bias_name.as_str()) {
            Some(&i) => graph.initializer[i] = bias_tensor,
            None => graph.initializer.push(bias_tensor),
        }
        let conv = &mut graph.node[conv_index];
        conv.input.truncate(2);
        conv.input.push(bias_name);
        conv.output[0] = bn.output[0].clone();
    }
    let mut drop: Vec<usize> = folded.iter().map(|f| f.0).collect();
    drop.sort_unstable();
    for i in drop.into_iter().rev() {
        graph.node.remove(i);
    }
    Ok(folded.len())
}

/// A Conv whose output reaches the next Conv only through a rewritten PRelu.
#[derive(Debug, Clone)]
struct PreluPair {
    producer: usize,
    producer_output: String,
    consumer: usize,
}

/// Finds `A → [Conv(−1) → Relu → Conv(1−a)] + A → B`: the converter's PRelu rewrite (depthwise
/// 1×1 Convs without bias) between a Conv `A` with initializer weights and bias and a Conv `B`
/// with initializer weights that is either depthwise over the same channels or ungrouped.
fn prelu_pairs(graph: &GraphProto) -> Vec<PreluPair> {
    let readers = consumers(graph);
    let inits = initializer_index(graph);
    let nodes = &graph.node;
    let only = |name: &str| match readers.get(name).map(Vec::as_slice) {
        Some([i]) => Some(*i),
        _ => None,
    };
    let weights_known = |n: &NodeProto, count: usize| {
        n.input.len() == count && n.input[1..].iter().all(|i| inits.contains_key(i.as_str()))
    };
    let mut pairs = Vec::new();
    for (a, producer) in nodes.iter().enumerate() {
        if !producer.is_onnx_op("Conv") || !weights_known(producer, 3) || producer.output.len() != 1 {
            continue;
        }
        let x = producer.output[0].as_str();
        let Some(x_readers) = readers.get(x).filter(|r| r.len() == 2) else { continue };
        let (Some(&neg), Some(&add)) = (
            x_readers.iter().find(|&&i| nodes[i].is_onnx_op("Conv")),
            x_readers.iter().find(|&&i| nodes[i].is_onnx_op("Add")),
        ) else {
            continue;
        };
        // Depthwise (one input channel per group, as many groups as channels) and without bias,
        // so scaling a channel's input scales that channel's output alone.
        let channelwise = |n: &NodeProto| {
            let dims = inits
                .get(n.input.get(1).map_or("", String::as_str))
                .and_then(|&i| tensor::dims(&graph.initializer[i]).ok());
            n.is_onnx_op("Conv")
                && weights_known(n, 2)
                && dims.is_some_and(|d| d.len() == 4 && d[1] == 1 && n.attr_int("group", 1) == d[0] as i64)
        };
        let Some(relu) = only(&nodes[neg].output[0]).filter(|&i| nodes[i].is_onnx_op("Relu")) else { continue };
        let Some(scaled) = only(&nodes[relu].output[0]).filter(|&i| channelwise(&nodes[i])) else { continue };
        let add_node = &nodes[add];
        let rewrite = channelwise(&nodes[neg])
            && only(&nodes[scaled].output[0]) == Some(add)
            && add_node.input.iter().any(|i| i == x)
            && add_node.input.contains(&nodes[scaled].output[0]);
        let Some(b) = only(&add_node.output[0]).filter(|&i| nodes[i].is_onnx_op("Conv")) else { continue };
        let consumer = &nodes[b];
        let channels = inits.get(producer.input[2].as_str()).and_then(|&i| tensor::dims(&graph.initializer[i]).ok());
        let groups = consumer.attr_int("group", 1);
        let consumer_fits = groups == 1 || channels.is_some_and(|c| c == [groups as usize]);
        if rewrite
            && consumer.input.first() == Some(&add_node.output[0])
            && inits.contains_key(consumer.input.get(1).map_or("", String::as_str))
            && consumer_fits
            && !is_graph_output(graph, x)
        {
            pairs.push(PreluPair { producer: a, producer_output: x.to_owned(), consumer: b });
        }
    }
    pairs
}

/// Scales `pair.producer`'s output channels up by `m_c = min(R / r_c, 64)` and `pair.consumer`'s
/// matching input channels down by the same factors.
fn equalize(graph: &mut GraphProto, pair: &PreluPair, magnitude: &[f32]) -> Result<(), QuantizeError> {
    let largest = magnitude.iter().copied().fold(0.0f32, f32::max);
    let factors: Vec<f32> =
        magnitude.iter().map(|&r| if r > 0.0 { (largest / r).clamp(1.0, EQUALIZE_MAX) } else { 1.0 }).collect();
    let inits = initializer_index(graph);
    let producer = graph.node[pair.producer].clone();
    let consumer = graph.node[pair.consumer].clone();
    let rescale = |graph: &mut GraphProto, name: &str, f: &dyn Fn(usize, &[usize]) -> f32| {
        let t = &graph.initializer[inits[name]];
        let dims = tensor::dims(t)?;
        let mut values = tensor::float_values(t)?;
        for (i, v) in values.iter_mut().enumerate() {
            *v *= f(i, &dims);
        }
        graph.initializer[inits[name]] = tensor::float_tensor(name, &dims, &values);
        Ok::<_, QuantizeError>(())
    };
    let per_row = |i: usize, dims: &[usize]| factors[i / dims[1..].iter().product::<usize>().max(1)];
    rescale(graph, &producer.input[1], &per_row)?;
    rescale(graph, &producer.input[2], &|i, _| factors[i])?;
    if consumer.attr_int("group", 1) > 1 {
        rescale(graph, &consumer.input[1], &|i, dims| 1.0 / per_row(i, dims))?;
    } else {
        let per_input = |i: usize, dims: &[usize]| {
            let inner = dims[2..].iter().product::<usize>().max(1);
            factors[(i / inner) % dims[1]]
        };
        rescale(graph, &consumer.input[1], &|i, dims| 1.0 / per_input(i, dims))?;
    }
    Ok(())
}

/// The activations an int8 Conv or Add reads or writes: a Conv's data input and output, all of an
/// Add's; `None` for other operators.
fn int8_values(node: &NodeProto) -> Option<Vec<&String>> {
    if node.is_onnx_op("Conv") {
        Some(node.input.iter().take(1).chain(&node.output).collect())
    } else if node.is_onnx_op("Add") {
        Some(node.input.iter().chain(&node.output).collect())
    } else {
        None
    }
}

/// Every [`int8_values`] value and every Relu output (a fused Conv's output after
/// [`fuse_conv_relus`]) that a node produces, in graph order.
fn activations_to_quantize(graph: &GraphProto) -> Vec<String> {
    let produced: HashSet<&str> = graph.node.iter().flat_map(|n| n.output.iter().map(String::as_str)).collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for node in &graph.node {
        let values = match int8_values(node) {
            Some(values) => values,
            None if node.is_onnx_op("Relu") => node.output.iter().collect(),
            None => continue,
        };
        for v in values {
            if produced.contains(v.as_str()) && seen.insert(v.clone()) {
                out.push(v.clone());
            }
        }
    }
    out
}

/// A session of `model` that also outputs `extra`.
fn probe_session(model: &ModelProto, environment: &Environment, extra: &[String]) -> Result<Session, QuantizeError> {
    let mut model = model.clone();
    let graph = model.graph.get_or_insert_with(Default::default);
    for name in extra {
        if !is_graph_output(graph, name) {
            graph.output.push(ValueInfoProto {
                name: Some(name.clone()),
                r#type: Some(TypeProto {
                    value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                        elem_type: Some(data_type::FLOAT),
                        shape: None,
                    })),
                    denotation: None,
                }),
                ..Default::default()
            });
        }
    }
    Session::builder(environment)
        .map_err(runtime)?
        .with_optimization_level(GraphOptimizationLevel::Level1)
        .map_err(runtime)?
        .with_intra_threads(1)
        .map_err(runtime)?
        .commit_from_memory(&model.to_bytes())
        .map_err(runtime)
}

/// Runs every calibration sample and hands each `names` value (shape, data) to `visit`.
fn for_each_value(
    model: &ModelProto,
    environment: &Environment,
    calibration: Calibration<'_>,
    names: &[String],
    mut visit: impl FnMut(usize, &[i64], &[f32]),
) -> Result<(), QuantizeError> {
    let mut session = probe_session(model, environment, names)?;
    let mut shape = vec![1];
    shape.extend_from_slice(calibration.shape);
    for sample in calibration.samples() {
        let input = Tensor::from_array((shape.clone(), sample.to_vec())).map_err(runtime)?;
        let outputs = session.run(ort::inputs![calibration.input_name => input]).map_err(runtime)?;
        for (k, name) in names.iter().enumerate() {
            let value = outputs.get(name).ok_or_else(|| QuantizeError::Missing(name.clone()))?;
            let (dims, data) = value.try_extract_tensor::<f32>().map_err(runtime)?;
            visit(k, dims, data);
        }
    }
    Ok(())
}

/// Largest |x| per channel (dim 1 of NCHW) of each of `names`.
fn channel_magnitudes(
    model: &ModelProto,
    environment: &Environment,
    calibration: Calibration<'_>,
    names: &[String],
) -> Result<Vec<Vec<f32>>, QuantizeError> {
    let mut magnitudes = vec![Vec::new(); names.len()];
    for_each_value(model, environment, calibration, names, |k, dims, data| {
        let channels = dims.get(1).map_or(1, |&c| c.max(1) as usize);
        let inner = data.len() / channels.max(1);
        let m = &mut magnitudes[k];
        m.resize(channels, 0.0f32);
        for (i, &v) in data.iter().enumerate() {
            let c = (i / inner.max(1)) % channels;
            m[c] = m[c].max(v.abs());
        }
    })?;
    Ok(magnitudes)
}

/// The u8 range `(scale, zero_point)` of each of `names` (see the module docs), except values
/// of the first and the last stage, which stay fp32 (step 3 of the module docs). A stage is a
/// spatial size: the input's, and the smallest of `names`.
fn activation_ranges(
    model: &ModelProto,
    environment: &Environment,
    calibration: Calibration<'_>,
    names: &[String],
) -> Result<HashMap<String, (f32, u8)>, QuantizeError> {
    let mut bounds = vec![(0.0f32, 0.0f32); names.len()];
    let mut spatial = vec![Vec::new(); names.len()];
    for_each_value(model, environment, calibration, names, |k, dims, data| {
        spatial[k] = dims.get(2..).unwrap_or_default().to_vec();
        let b = &mut bounds[k];
        for &v in data {
            b.0 = b.0.min(v);
            b.1 = b.1.max(v);
        }
    })?;
    let first: Vec<i64> = calibration.shape.iter().skip(1).map(|&d| d as i64).collect();
    let last = spatial.iter().filter(|s| s.len() == first.len()).min_by_key(|s| s.iter().product::<i64>()).cloned();
    let stays_fp32: Vec<bool> = spatial.iter().map(|s| *s == first || Some(s) == last.as_ref()).collect();
    let mut histograms = vec![vec![0u64; HISTOGRAM_BINS]; names.len()];
    for_each_value(model, environment, calibration, names, |k, _, data| {
        let top = bounds[k].0.abs().max(bounds[k].1);
        if top <= 0.0 || stays_fp32[k] {
            return;
        }
        let per_bin = HISTOGRAM_BINS as f32 / top;
        let h = &mut histograms[k];
        for &v in data {
            h[((v.abs() * per_bin) as usize).min(HISTOGRAM_BINS - 1)] += 1;
        }
    })?;
    let mut ranges = HashMap::new();
    for (k, name) in names.iter().enumerate().filter(|&(k, _)| !stays_fp32[k]) {
        let (min, max) = bounds[k];
        let threshold = percentile_edge(&histograms[k], PERCENTILE) * min.abs().max(max);
        ranges.insert(name.clone(), u8_range(min.max(-threshold), max.min(threshold)));
    }
    Ok(ranges)
}

/// The upper edge, as a share of the histogram's span, of the bin where the cumulative count
/// reaches `share` of the total.
fn percentile_edge(histogram: &[u64], share: f64) -> f32 {
    let total: u64 = histogram.iter().sum();
    let goal = (total as f64 * share).ceil() as u64;
    let mut seen = 0;
    for (i, &count) in histogram.iter().enumerate() {
        seen += count;
        if seen >= goal {
            return (i + 1) as f32 / histogram.len() as f32;
        }
    }
    1.0
}

/// Asymmetric u8 quantization of `[lo, hi]` widened to include 0.
fn u8_range(lo: f32, hi: f32) -> (f32, u8) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    (scale, (-lo / scale).round().clamp(0.0, 255.0) as u8)
}

/// Removes each Relu that alone reads a Conv's output and whose output has a u8 range with zero
/// point 0, the Conv writing the Relu's output instead: quantizing to that range clamps negative
/// values to 0 as the Relu did.
fn fuse_conv_relus(graph: &mut GraphProto, ranges: &HashMap<String, (f32, u8)>) -> usize {
    let readers = consumers(graph);
    let mut fused = Vec::new();
    for (r, relu) in graph.node.iter().enumerate() {
        let clamps = relu.output.first().and_then(|o| ranges.get(o)).is_some_and(|&(_, zero)| zero == 0);
        if !relu.is_onnx_op("Relu") || relu.input.len() != 1 || !clamps {
            continue;
        }
        let x = relu.input[0].as_str();
        let conv = graph.node.iter().position(|n| n.is_onnx_op("Conv") && n.output.first().is_some_and(|o| o == x));
        if let Some(c) = conv.filter(|_| readers.get(x).is_some_and(|v| v.len() == 1) && !is_graph_output(graph, x)) {
            fused.push((r, c, relu.output[0].clone()));
        }
    }
    for (_, c, output) in &fused {
        graph.node[*c].output[0] = output.clone();
    }
    let mut drop: Vec<usize> = fused.iter().map(|f| f.0).collect();
    drop.sort_unstable();
    for i in drop.iter().rev() {
        graph.node.remove(*i);
    }
    fused.len()
}

fn scalar_or_vector(name: &str, data_type: i32, len: Option<usize>, raw: Vec<u8>) -> TensorProto {
    TensorProto {
        dims: len.map(|n| vec![n as i64]).unwrap_or_default(),
        data_type: Some(data_type),
        name: Some(name.to_owned()),
        raw_data: Some(raw),
        ..Default::default()
    }
}

fn qdq_node(op: &str, inputs: [&str; 3], output: &str, axis: Option<i64>) -> NodeProto {
    NodeProto {
        op_type: Some(op.to_owned()),
        name: Some(output.to_owned()),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: vec![output.to_owned()],
        attribute: axis.map(|a| vec![crate::convert::int_attribute("axis", a)]).unwrap_or_default(),
        ..Default::default()
    }
}

/// Puts `QuantizeLinear → DequantizeLinear` after every calibrated [`int8_values`] value (its
/// readers read the dequantized value), and gives each Conv whose input and output are calibrated
/// and whose weights and bias it alone reads int8 / int32 initializers behind a `DequantizeLinear`.
fn insert_qdq(
    graph: &mut GraphProto,
    ranges: &HashMap<String, (f32, u8)>,
    stats: &mut QuantizeStats,
) -> Result<(), QuantizeError> {
    let inits = initializer_index(graph);
    let quantized: HashSet<String> = graph
        .node
        .iter()
        .filter_map(int8_values)
        .flatten()
        .filter(|v| ranges.contains_key(v.as_str()))
        .cloned()
        .collect();
    let readers = consumers(graph);
    let read_once = |name: &str| readers.get(name).is_some_and(|r| r.len() == 1);
    let mut new_inits = Vec::new();
    let mut prologue = Vec::new();
    let mut nodes = Vec::with_capacity(graph.node.len() * 3);
    let dq_name = |v: &str| format!("{v}__dq");
    for node in &graph.node {
        let mut node = node.clone();
        let own_weights = node.input.iter().skip(1).all(|w| inits.contains_key(w.as_str()) && read_once(w));
        let input_range = node.input.first().and_then(|i| ranges.get(i.as_str()));
        let output_quantized = node.output.first().is_some_and(|o| ranges.contains_key(o.as_str()));
        if let Some(&(input_scale, _)) =
            input_range.filter(|_| node.is_onnx_op("Conv") && node.input.len() >= 2 && own_weights && output_quantized)
        {
            let w_name = node.input[1].clone();
            let w_tensor = &graph.initializer[inits[w_name.as_str()]];
            let dims = tensor::dims(w_tensor)?;
            let w = tensor::float_values(w_tensor)?;
            let out_channels = dims.first().copied().unwrap_or(1);
            let per_out = w.len() / out_channels.max(1);
            let mut scales = Vec::with_capacity(out_channels);
            let mut q = Vec::with_capacity(w.len());
            for row in w.chunks_exact(per_out.max(1)) {
                let largest = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let s = if largest > 0.0 { largest / 127.0 } else { 1.0 };
                scales.push(s);
                q.extend(row.iter().map(|v| (v / s).round().clamp(-127.0, 127.0) as i8 as u8));
            }
            let qw = format!("{w_name}__q");
            let ws = format!("{w_name}__scale");
            let wz = format!("{w_name}__zero");
            let mut qw_tensor = scalar_or_vector(&qw, data_type::INT8, None, q);
            qw_tensor.dims = dims.iter().map(|&d| d as i64).collect();
            new_inits.push(qw_tensor);
            new_inits.push(tensor::float_tensor(&ws, &[out_channels], &scales));
            new_inits.push(scalar_or_vector(&wz, data_type::INT8, Some(out_channels), vec![0; out_channels]));
            prologue.push(qdq_node("DequantizeLinear", [&qw, &ws, &wz], &dq_name(&w_name), Some(0)));
            node.input[1] = dq_name(&w_name);
            if let Some(b_name) = node.input.get(2).cloned() {
                let b = tensor::float_values(&graph.initializer[inits[b_name.as_str()]])?;
                let bias_scales: Vec<f32> = scales.iter().map(|s| s * input_scale).collect();
                let qb: Vec<u8> = b
                    .iter()
                    .zip(&bias_scales)
                    .flat_map(|(v, s)| ((v / s).round().clamp(i32::MIN as f32, i32::MAX as f32) as i32).to_le_bytes())
                    .collect();
                let (qb_name, bs, bz) = (format!("{b_name}__q"), format!("{b_name}__scale"), format!("{b_name}__zero"));
                new_inits.push(scalar_or_vector(&qb_name, data_type::INT32, Some(b.len()), qb));
                new_inits.push(tensor::float_tensor(&bs, &[b.len()], &bias_scales));
                new_inits.push(scalar_or_vector(&bz, data_type::INT32, Some(b.len()), vec![0; 4 * b.len()]));
                prologue.push(qdq_node("DequantizeLinear", [&qb_name, &bs, &bz], &dq_name(&b_name), Some(0)));
                node.input[2] = dq_name(&b_name);
            }
            stats.convs_quantized += 1;
        } else if node.is_onnx_op("Add") && node.input.iter().chain(&node.output).all(|v| quantized.contains(v)) {
            stats.adds_quantized += 1;
        }
        for input in node.input.iter_mut() {
            if quantized.contains(input.as_str()) {
                *input = dq_name(input);
            }
        }
        let outputs = node.output.clone();
        nodes.push(node);
        for output in outputs.iter().filter(|o| quantized.contains(o.as_str())) {
            let (scale, zero) = ranges[output.as_str()];
            let (s, z, q) = (format!("{output}__scale"), format!("{output}__zero"), format!("{output}__q"));
            new_inits.push(tensor::float_tensor(&s, &[], &[scale]));
            new_inits.push(scalar_or_vector(&z, data_type::UINT8, None, vec![zero]));
            nodes.push(qdq_node("QuantizeLinear", [output, &s, &z], &q, None));
            nodes.push(qdq_node("DequantizeLinear", [&q, &s, &z], &dq_name(output), None));
            stats.activations_quantized += 1;
        }
    }
    prologue.extend(nodes);
    graph.node = prologue;
    graph.initializer.extend(new_inits);
    drop_unread_initializers(graph);
    Ok(())
}

fn drop_unread_initializers(graph: &mut GraphProto) {
    let mut read = HashSet::new();
    crate::convert::read_names(&graph.node, &mut read);
    graph.initializer.retain(|t| read.contains(t.label()));
}

/// Replaces each `Gemm(A, B, C)` with a constant `B` of shape `[N, K]` (`transB = 1`, `K` a
/// multiple of [`FC_BLOCK`], `transA = 0`, `alpha = beta = 1`) by
/// `MatMulNBits(A, B as u8 blocks) + C` (step 5 of the module docs). Returns how many it replaced.
fn blockwise_gemms(graph: &mut GraphProto) -> Result<usize, QuantizeError> {
    let inits = initializer_index(graph);
    let mut new_inits = Vec::new();
    let mut nodes = Vec::with_capacity(graph.node.len() + 1);
    let mut replaced = 0;
    for node in &graph.node {
        let plain_gemm = node.is_onnx_op("Gemm")
            && node.attr_int("transA", 0) == 0
            && node.attr_int("transB", 0) == 1
            && node.attr("alpha").and_then(|a| a.f).is_none_or(|a| a == 1.0)
            && node.attr("beta").and_then(|a| a.f).is_none_or(|b| b == 1.0);
        let weight = node.input.get(1).and_then(|b| inits.get(b.as_str())).map(|&i| &graph.initializer[i]);
        let dims = weight.filter(|_| plain_gemm).map(tensor::dims).transpose()?;
        let (Some(weight), Some(&[n, k])) = (weight, dims.as_deref()) else {
            nodes.push(node.clone());
            continue;
        };
        if k % FC_BLOCK != 0 {
            nodes.push(node.clone());
            continue;
        }
        let blocks = k / FC_BLOCK;
        let w = tensor::float_values(weight)?;
        let mut q = Vec::with_capacity(w.len());
        let mut scales = Vec::with_capacity(n * blocks);
        let mut zeros = Vec::with_capacity(n * blocks);
        for block in w.chunks_exact(FC_BLOCK) {
            let (lo, hi) = block.iter().fold((0.0f32, 0.0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            let (scale, zero) = u8_range(lo, hi);
            scales.push(scale);
            zeros.push(zero);
            q.extend(block.iter().map(|v| (v / scale + f32::from(zero)).round().clamp(0.0, 255.0) as u8));
        }
        let w_name = weight.label();
        let (qw, ws, wz) = (format!("{w_name}__u8"), format!("{w_name}__scale"), format!("{w_name}__zero"));
        let mut qw_tensor = scalar_or_vector(&qw, data_type::UINT8, None, q);
        qw_tensor.dims = vec![n as i64, blocks as i64, FC_BLOCK as i64];
        new_inits.push(qw_tensor);
        new_inits.push(tensor::float_tensor(&ws, &[n * blocks], &scales));
        new_inits.push(scalar_or_vector(&wz, data_type::UINT8, Some(n * blocks), zeros));
        let output = node.output[0].clone();
        let bias = node.input.get(2).filter(|c| !c.is_empty());
        let product = if bias.is_some() { format!("{output}__matmul") } else { output.clone() };
        nodes.push(NodeProto {
            op_type: Some("MatMulNBits".to_owned()),
            domain: Some(MS_DOMAIN.to_owned()),
            name: Some(product.clone()),
            input: vec![node.input[0].clone(), qw, ws, wz],
            output: vec![product.clone()],
            attribute: vec![
                crate::convert::int_attribute("K", k as i64),
                crate::convert::int_attribute("N", n as i64),
                crate::convert::int_attribute("bits", 8),
                crate::convert::int_attribute("block_size", FC_BLOCK as i64),
                // int8 activations per block and VNNI; 0 would dequantize every weight per call.
                crate::convert::int_attribute("accuracy_level", 4),
            ],
            ..Default::default()
        });
        if let Some(bias) = bias {
            nodes.push(NodeProto {
                op_type: Some("Add".to_owned()),
                name: Some(output.clone()),
                input: vec![product, bias.clone()],
                output: vec![output],
                ..Default::default()
            });
        }
        replaced += 1;
    }
    graph.node = nodes;
    graph.initializer.extend(new_inits);
    drop_unread_initializers(graph);
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u8_range_widens_to_zero_and_rounds_the_zero_point() {
        let (scale, zero) = u8_range(-1.0, 3.0);
        assert!((scale - 4.0 / 255.0).abs() < 1e-9);
        assert_eq!(zero, 64, "-(-1) / (4/255) = 63.75");
        assert_eq!(u8_range(0.5, 2.0), (2.0 / 255.0, 0), "a positive range starts at 0");
        assert_eq!(u8_range(-2.0, -0.5), (2.0 / 255.0, 255), "a negative range ends at 0");
        assert_eq!(u8_range(0.0, 0.0), (1.0, 0), "an all-zero tensor gets a usable scale");
    }

    #[test]
    fn percentile_edge_is_the_upper_edge_of_the_bin_reaching_the_share() {
        let histogram = [50, 30, 15, 4, 1];
        assert_eq!(percentile_edge(&histogram, 0.5), 0.2);
        assert_eq!(percentile_edge(&histogram, 0.96), 0.8, "cumulative 50, 80, 95, 99");
        assert_eq!(percentile_edge(&histogram, 1.0), 1.0);
    }
}
