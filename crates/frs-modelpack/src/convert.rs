//! Graph rewriting: quantized OpenCV Zoo models to plain fp32 models for ONNX Runtime.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::dequant::{self, DequantizeError, Granularity};
use crate::proto::tensor_shape_proto::Dimension;
use crate::proto::tensor_shape_proto::dimension::Value as DimValue;
use crate::proto::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, attribute_type, data_type};
use crate::tensor::{self, TensorError};

/// What [`convert`] changes beyond folding and pruning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConvertOptions {
    /// Symbolic names for dims 2 and 3 (H and W of NCHW) of the first graph input. Output dims
    /// equal to `(H/s)*(W/s)` at the declared size, for `s` in 1, 2, …, 32, become
    /// `"{height}/{s}*{width}/{s}"`.
    pub symbolic_hw: Option<(String, String)>,
    /// Symbolic name for dim 0 of the first graph input and of every graph output.
    pub symbolic_batch: Option<String>,
    /// Opset version for the default domain; `None` keeps the model's.
    pub opset: Option<i64>,
}

/// What [`convert`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConvertStats {
    pub nodes_before: usize,
    pub nodes_after: usize,
    pub initializers_before: usize,
    pub initializers_after: usize,
    /// Folded `DequantizeLinear` nodes by kind, e.g. `"INT8 blocked axis=1 block_size=64" => 21`.
    pub dequantize_folded: BTreeMap<String, usize>,
    /// `Reshape` nodes of constants replaced by reshaped initializers.
    pub reshapes_folded: usize,
    pub dropouts_removed: usize,
    /// `PRelu` nodes with a constant per-channel slope rewritten into NCHWc-friendly operators
    /// (see [`rewrite_prelus`]).
    pub prelus_rewritten: usize,
    /// Nodes removed because nothing reads their outputs.
    pub dead_nodes_removed: usize,
    /// Graph inputs removed: unread, or backed by an initializer.
    pub inputs_removed: usize,
    pub value_info_removed: usize,
    /// `(name, shape)` of the graph inputs afterwards, dims as text.
    pub inputs: Vec<(String, Vec<String>)>,
    /// `(name, shape)` of the graph outputs afterwards, dims as text.
    pub outputs: Vec<(String, Vec<String>)>,
}

/// Why a model could not be converted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConvertError {
    #[error("the model has no graph")]
    NoGraph,
    #[error(transparent)]
    Tensor(#[from] TensorError),
    #[error("DequantizeLinear `{node}`: {source}")]
    Dequantize { node: String, source: DequantizeError },
    #[error("{op} `{node}` is not supported: {reason}")]
    Unsupported { op: String, node: String, reason: String },
    #[error("{op} `{node}` pins the input size: {reason}")]
    PinnedShape { op: String, node: String, reason: String },
    #[error("the first graph input `{name}` {reason}")]
    Input { name: String, reason: String },
}

/// Rewrites `model` in place:
///
/// 1. every `DequantizeLinear` whose inputs are all initializers becomes an fp32 initializer
///    named like its output, and every `Reshape` of an initializer by a constant shape becomes a
///    reshaped initializer;
/// 2. `Dropout` (inference: identity) is removed, its readers rewired to its input;
/// 3. every `PRelu` whose slope is a per-channel fp32 initializer becomes
///    `Add(x, Conv(Relu(Conv(x, -1)), 1 - a))` (see [`rewrite_prelus`]);
/// 4. nodes whose outputs nobody reads, unread initializers, unread graph inputs and graph inputs
///    backed by initializers (which ONNX Runtime treats as overridable, blocking constant folding)
///    are removed, as is `value_info` about removed values;
/// 5. the dims named in `options` become symbolic (then all `value_info` is dropped, as it was
///    inferred for the fixed size); remaining `Reshape`/`Resize`/`Expand` constants that would
///    pin a symbolic dim are reported as [`ConvertError::PinnedShape`];
/// 6. the default-domain opset is set if asked. `ir_version` is kept.
pub fn convert(model: &mut ModelProto, options: &ConvertOptions) -> Result<ConvertStats, ConvertError> {
    let graph = model.graph.as_mut().ok_or(ConvertError::NoGraph)?;
    let mut stats = ConvertStats {
        nodes_before: graph.node.len(),
        initializers_before: graph.initializer.len(),
        ..Default::default()
    };

    fold_constants(graph, &mut stats)?;
    remove_dropouts(graph, &mut stats)?;
    rewrite_prelus(graph, &mut stats)?;
    prune(graph, &mut stats);
    make_symbolic(graph, options, &mut stats)?;

    if let Some(version) = options.opset {
        for opset in &mut model.opset_import {
            if matches!(opset.domain.as_deref(), None | Some("") | Some("ai.onnx")) {
                opset.version = Some(version);
            }
        }
    }

    let graph = model.graph.as_ref().ok_or(ConvertError::NoGraph)?;
    stats.nodes_after = graph.node.len();
    stats.initializers_after = graph.initializer.len();
    let describe = |v: &crate::proto::ValueInfoProto| {
        let dims = v
            .tensor_type()
            .and_then(|t| t.shape.as_ref())
            .map(|s| s.dim.iter().map(dim_text).collect())
            .unwrap_or_default();
        (v.label().to_owned(), dims)
    };
    stats.inputs = graph.input.iter().map(describe).collect();
    stats.outputs = graph.output.iter().map(describe).collect();
    Ok(stats)
}

/// A dim as text: its value, its parameter name, or `?`.
pub fn dim_text(d: &Dimension) -> String {
    match &d.value {
        Some(DimValue::DimValue(v)) => v.to_string(),
        Some(DimValue::DimParam(p)) => p.clone(),
        None => "?".to_owned(),
    }
}

/// Input `i` of `node` when present and non-empty.
fn input(node: &NodeProto, i: usize) -> Option<&str> {
    node.input.get(i).map(String::as_str).filter(|s| !s.is_empty())
}

fn fold_constants(graph: &mut GraphProto, stats: &mut ConvertStats) -> Result<(), ConvertError> {
    let mut index: HashMap<String, usize> =
        graph.initializer.iter().enumerate().map(|(i, t)| (t.label().to_owned(), i)).collect();
    let mut keep = Vec::with_capacity(graph.node.len());
    for node in std::mem::take(&mut graph.node) {
        let folded = if node.is_onnx_op("DequantizeLinear") {
            fold_dequantize(&node, &graph.initializer, &index)?
        } else if node.is_onnx_op("Reshape") {
            fold_reshape(&node, &graph.initializer, &index)?
        } else {
            None
        };
        match folded {
            Some((tensor, kind)) => {
                match kind {
                    Some(kind) => *stats.dequantize_folded.entry(kind).or_default() += 1,
                    None => stats.reshapes_folded += 1,
                }
                index.insert(tensor.label().to_owned(), graph.initializer.len());
                graph.initializer.push(tensor);
            }
            None => keep.push(node),
        }
    }
    graph.node = keep;
    Ok(())
}

type Folded = Option<(TensorProto, Option<String>)>;

fn fold_dequantize(
    node: &NodeProto,
    initializers: &[TensorProto],
    index: &HashMap<String, usize>,
) -> Result<Folded, ConvertError> {
    let constant = |i: usize| input(node, i).and_then(|name| index.get(name)).map(|&k| &initializers[k]);
    let (Some(x), Some(scale)) = (constant(0), constant(1)) else { return Ok(None) };
    let zero_point = match input(node, 2) {
        None => None,
        Some(_) => match constant(2) {
            Some(t) => Some(t),
            None => return Ok(None),
        },
    };
    let Some(output) = node.output.first().filter(|o| !o.is_empty()) else { return Ok(None) };
    let unsupported = |reason: String| ConvertError::Unsupported {
        op: "DequantizeLinear".into(),
        node: node.label().to_owned(),
        reason,
    };
    let scale_type = scale.data_type.unwrap_or(0);
    if scale_type != data_type::FLOAT {
        return Err(unsupported(format!("scale type {} (only FLOAT)", data_type::name(scale_type))));
    }
    if let Some(zp) = zero_point
        && zp.data_type != x.data_type
    {
        return Err(unsupported("zero point type differs from the input type".into()));
    }
    if node.attr("output_dtype").is_some() {
        return Err(unsupported("the output_dtype attribute (opset 23) is not handled".into()));
    }
    let axis = node.attr_int("axis", 1);
    let block_size = node.attr_int("block_size", 0);
    let x_dims = tensor::dims(x)?;
    let scale_dims = tensor::dims(scale)?;
    let x_values = tensor::integer_values(x)?;
    let scale_values = tensor::float_values(scale)?;
    let zp = match zero_point {
        Some(t) => Some((tensor::integer_values(t)?, tensor::dims(t)?)),
        None => None,
    };
    let err = |source| ConvertError::Dequantize { node: node.label().to_owned(), source };
    let y = dequant::dequantize(
        &x_values,
        &x_dims,
        &scale_values,
        &scale_dims,
        zp.as_ref().map(|(v, d)| (v.as_slice(), d.as_slice())),
        axis,
        block_size,
    )
    .map_err(err)?;
    let kind = match dequant::granularity(&x_dims, &scale_dims, axis, block_size).map_err(err)? {
        Granularity::PerTensor => "per-tensor".to_owned(),
        Granularity::PerAxis { axis } => format!("per-axis axis={axis}"),
        Granularity::Blocked { axis, block_size } => format!("blocked axis={axis} block_size={block_size}"),
    };
    let kind = format!("{} {kind}", data_type::name(x.data_type.unwrap_or(0)));
    Ok(Some((tensor::float_tensor(output, &x_dims, &y), Some(kind))))
}

fn fold_reshape(
    node: &NodeProto,
    initializers: &[TensorProto],
    index: &HashMap<String, usize>,
) -> Result<Folded, ConvertError> {
    let constant = |i: usize| input(node, i).and_then(|name| index.get(name)).map(|&k| &initializers[k]);
    let (Some(data), Some(shape)) = (constant(0), constant(1)) else { return Ok(None) };
    let Some(output) = node.output.first().filter(|o| !o.is_empty()) else { return Ok(None) };
    let unsupported =
        |reason: String| ConvertError::Unsupported { op: "Reshape".into(), node: node.label().to_owned(), reason };
    let data_dims = tensor::dims(data)?;
    let count = tensor::element_count(&data_dims).unwrap_or(usize::MAX);
    let target = tensor::int64_values(shape)?;
    let allow_zero = node.attr_int("allowzero", 0) != 0;
    let mut dims = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 if infer.is_none() => {
                infer = Some(i);
                dims.push(1);
            }
            0 if !allow_zero => dims.push(
                *data_dims.get(i).ok_or_else(|| unsupported(format!("shape {target:?} copies a missing dim {i}")))?,
            ),
            t if t >= 0 => dims.push(t as usize),
            _ => return Err(unsupported(format!("invalid target shape {target:?}"))),
        }
    }
    let known = tensor::element_count(&dims).unwrap_or(usize::MAX);
    if let Some(i) = infer {
        if known == 0 || !count.is_multiple_of(known) {
            return Err(unsupported(format!("cannot infer -1 in {target:?} for shape {data_dims:?}")));
        }
        dims[i] = count / known;
    }
    if tensor::element_count(&dims) != Some(count) {
        return Err(unsupported(format!("shape {target:?} does not fit {data_dims:?}")));
    }
    let mut reshaped = data.clone();
    reshaped.dims = dims.iter().map(|&d| d as i64).collect();
    reshaped.name = Some(output.clone());
    reshaped.doc_string = None;
    Ok(Some((reshaped, None)))
}

/// Calls `f` on every node input name in `nodes` and their subgraphs.
fn for_each_input_mut(nodes: &mut [NodeProto], f: &mut impl FnMut(&mut String)) {
    for node in nodes {
        node.input.iter_mut().for_each(&mut *f);
        for attr in &mut node.attribute {
            if let Some(g) = attr.g.as_mut() {
                for_each_input_mut(&mut g.node, f);
            }
            for g in &mut attr.graphs {
                for_each_input_mut(&mut g.node, f);
            }
        }
    }
}

/// Every name read by a node of `nodes` or of their subgraphs.
pub(crate) fn read_names(nodes: &[NodeProto], names: &mut HashSet<String>) {
    for node in nodes {
        names.extend(node.input.iter().filter(|s| !s.is_empty()).cloned());
        for attr in &node.attribute {
            if let Some(g) = attr.g.as_ref() {
                read_names(&g.node, names);
                names.extend(g.output.iter().map(|o| o.label().to_owned()));
            }
            for g in &attr.graphs {
                read_names(&g.node, names);
                names.extend(g.output.iter().map(|o| o.label().to_owned()));
            }
        }
    }
}

fn remove_dropouts(graph: &mut GraphProto, stats: &mut ConvertStats) -> Result<(), ConvertError> {
    let graph_outputs: HashSet<String> = graph.output.iter().map(|o| o.label().to_owned()).collect();
    let mut read = HashSet::new();
    read_names(&graph.node, &mut read);
    let mut renames: Vec<(String, String)> = Vec::new();
    let mut keep = Vec::with_capacity(graph.node.len());
    for mut node in std::mem::take(&mut graph.node) {
        if !node.is_onnx_op("Dropout") {
            keep.push(node);
            continue;
        }
        let unsupported = |reason: &str| ConvertError::Unsupported {
            op: "Dropout".into(),
            node: node.label().to_owned(),
            reason: reason.into(),
        };
        if input(&node, 2).is_some() {
            return Err(unsupported("training_mode input is set"));
        }
        if node.output.get(1).is_some_and(|m| !m.is_empty() && (read.contains(m) || graph_outputs.contains(m))) {
            return Err(unsupported("its mask output is used"));
        }
        let (Some(from), Some(to)) = (node.output.first().cloned(), input(&node, 0).map(str::to_owned)) else {
            return Err(unsupported("missing data input or output"));
        };
        stats.dropouts_removed += 1;
        if graph_outputs.contains(&from) {
            node.op_type = Some("Identity".into());
            node.input.truncate(1);
            node.output.truncate(1);
            node.attribute.clear();
            keep.push(node);
        } else {
            renames.push((from, to));
        }
    }
    graph.node = keep;
    if !renames.is_empty() {
        let mut map: HashMap<String, String> = renames.into_iter().collect();
        // Chains of dropouts: resolve to the first non-dropout producer.
        let keys: Vec<String> = map.keys().cloned().collect();
        for k in keys {
            let mut target = map[&k].clone();
            let mut hops = 0;
            while let Some(next) = map.get(&target) {
                target = next.clone();
                hops += 1;
                if hops > map.len() {
                    break;
                }
            }
            map.insert(k, target);
        }
        for_each_input_mut(&mut graph.node, &mut |name| {
            if let Some(to) = map.get(name.as_str()) {
                *name = to.clone();
            }
        });
    }
    Ok(())
}

/// The channel count of a PRelu slope that is per-channel for an NCHW input: shape `[C,1,1]` or
/// `[1,C,1,1]` with `C > 1`. A `[C]` slope broadcasts along W of an NCHW input, not along C, and
/// a single slope would need the input's channel count, so both are left alone.
fn per_channel_slope(dims: &[usize]) -> Option<usize> {
    let c = match dims {
        [c, 1, 1] | [1, c, 1, 1] => *c,
        _ => return None,
    };
    (c > 1).then_some(c)
}

/// Rewrites every `PRelu(x, a)` whose slope `a` is a per-channel fp32 initializer (see
/// [`per_channel_slope`]) into
///
/// ```text
/// n1 = Conv(x, W1)   W1 = -1     [C,1,1,1], group = C, kernel_shape = [1,1]
/// n2 = Relu(n1)
/// n3 = Conv(n2, W2)  W2 = 1 - a  [C,1,1,1], group = C, kernel_shape = [1,1]
/// y  = Add(x, n3)
/// ```
///
/// which equals `PRelu` (`y = x + (1 - a)·relu(-x)`) and, unlike it, is made of operators ONNX
/// Runtime runs in its NCHWc layout (the Relu and the Add fuse into the convolutions), so no
/// layout reorders surround it. SFace runs in about 0.56× the time. The output keeps the PRelu's
/// name; new names are derived from it and made unique.
fn rewrite_prelus(graph: &mut GraphProto, stats: &mut ConvertStats) -> Result<(), ConvertError> {
    let index: HashMap<String, usize> =
        graph.initializer.iter().enumerate().map(|(i, t)| (t.label().to_owned(), i)).collect();
    let mut taken: HashSet<String> = index.keys().cloned().collect();
    taken.extend(graph.input.iter().chain(&graph.output).map(|v| v.label().to_owned()));
    for node in &graph.node {
        taken.extend(node.output.iter().cloned());
        if let Some(name) = &node.name {
            taken.insert(name.clone());
        }
    }
    let mut fresh = |base: String| {
        let mut name = base.clone();
        let mut k = 1;
        while taken.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        taken.insert(name.clone());
        name
    };

    let mut keep = Vec::with_capacity(graph.node.len());
    let mut new_initializers = Vec::new();
    for node in std::mem::take(&mut graph.node) {
        let slope = if node.is_onnx_op("PRelu") && node.output.len() == 1 {
            input(&node, 1).and_then(|name| index.get(name)).map(|&k| &graph.initializer[k])
        } else {
            None
        };
        let (Some(slope), Some(x), Some(y)) = (slope, input(&node, 0), node.output.first().filter(|o| !o.is_empty()))
        else {
            keep.push(node);
            continue;
        };
        if slope.data_type != Some(data_type::FLOAT) {
            keep.push(node);
            continue;
        }
        let Some(c) = per_channel_slope(&tensor::dims(slope)?) else {
            keep.push(node);
            continue;
        };
        let a = tensor::float_values(slope)?;
        let (x, y) = (x.to_owned(), y.clone());
        let neg_w = fresh(format!("{y}__neg_w"));
        let scale_w = fresh(format!("{y}__one_minus_slope_w"));
        let neg = fresh(format!("{y}__neg"));
        let relu = fresh(format!("{y}__relu_neg"));
        let scaled = fresh(format!("{y}__scaled"));
        new_initializers.push(tensor::float_tensor(&neg_w, &[c, 1, 1, 1], &vec![-1.0; c]));
        let one_minus: Vec<f32> = a.iter().map(|&v| 1.0 - v).collect();
        new_initializers.push(tensor::float_tensor(&scale_w, &[c, 1, 1, 1], &one_minus));

        let make = |op: &str, inputs: Vec<String>, output: String, depthwise: bool| NodeProto {
            op_type: Some(op.to_owned()),
            name: Some(output.clone()),
            input: inputs,
            output: vec![output],
            domain: node.domain.clone(),
            attribute: if depthwise {
                vec![int_attribute("group", c as i64), ints_attribute("kernel_shape", &[1, 1])]
            } else {
                Vec::new()
            },
            ..Default::default()
        };
        let add_name = fresh(format!("{y}__add"));
        let mut add = make("Add", vec![x.clone(), scaled.clone()], y, false);
        add.name = Some(add_name);
        keep.push(make("Conv", vec![x, neg_w], neg.clone(), true));
        keep.push(make("Relu", vec![neg], relu.clone(), false));
        keep.push(make("Conv", vec![relu, scale_w], scaled, true));
        keep.push(add);
        stats.prelus_rewritten += 1;
    }
    graph.node = keep;
    graph.initializer.extend(new_initializers);
    Ok(())
}

pub(crate) fn int_attribute(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: Some(name.into()), i: Some(v), r#type: Some(attribute_type::INT), ..Default::default() }
}

fn ints_attribute(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        ints: v.to_vec(),
        r#type: Some(attribute_type::INTS),
        ..Default::default()
    }
}

fn prune(graph: &mut GraphProto, stats: &mut ConvertStats) {
    let graph_outputs: HashSet<String> = graph.output.iter().map(|o| o.label().to_owned()).collect();
    loop {
        let mut read = graph_outputs.clone();
        read_names(&graph.node, &mut read);
        let before = graph.node.len();
        graph.node.retain(|n| n.output.iter().any(|o| !o.is_empty() && read.contains(o)));
        let removed = before - graph.node.len();
        stats.dead_nodes_removed += removed;
        if removed == 0 {
            break;
        }
    }
    let mut read = graph_outputs.clone();
    read_names(&graph.node, &mut read);
    graph.initializer.retain(|t| read.contains(t.label()));
    let initializers: HashSet<&str> = graph.initializer.iter().map(TensorProto::label).collect();
    let before = graph.input.len();
    graph.input.retain(|i| read.contains(i.label()) && !initializers.contains(i.label()));
    stats.inputs_removed = before - graph.input.len();

    let mut produced: HashSet<&str> = graph.node.iter().flat_map(|n| n.output.iter().map(String::as_str)).collect();
    produced.retain(|s| !s.is_empty());
    let before = graph.value_info.len();
    graph.value_info.retain(|v| produced.contains(v.label()));
    stats.value_info_removed = before - graph.value_info.len();
    let live: HashSet<&str> = produced.iter().copied().chain(initializers.iter().copied()).collect();
    graph.quantization_annotation.retain(|a| a.tensor_name.as_deref().is_some_and(|n| live.contains(n)));
}

/// The constant int64 values of `name`: an initializer or a `Constant` node's `value`.
fn constant_ints(graph: &GraphProto, name: &str) -> Option<Vec<i64>> {
    if let Some(t) = graph.initializer.iter().find(|t| t.label() == name) {
        return tensor::int64_values(t).ok();
    }
    let node = graph.node.iter().find(|n| n.is_onnx_op("Constant") && n.output.first().is_some_and(|o| o == name))?;
    let value = node.attr("value")?.t.as_ref()?;
    tensor::int64_values(value).ok()
}

fn make_symbolic(
    graph: &mut GraphProto,
    options: &ConvertOptions,
    stats: &mut ConvertStats,
) -> Result<(), ConvertError> {
    if options.symbolic_hw.is_none() && options.symbolic_batch.is_none() {
        return Ok(());
    }
    let first =
        graph.input.first().ok_or_else(|| ConvertError::Input { name: String::new(), reason: "is missing".into() })?;
    let name = first.label().to_owned();
    let input_error = |reason: &str| ConvertError::Input { name: name.clone(), reason: reason.into() };
    let fixed: Vec<Option<i64>> = first
        .tensor_type()
        .and_then(|t| t.shape.as_ref())
        .ok_or_else(|| input_error("has no tensor shape"))?
        .dim
        .iter()
        .map(|d| match d.value {
            Some(DimValue::DimValue(v)) => Some(v),
            _ => None,
        })
        .collect();

    let spatial = match &options.symbolic_hw {
        Some(names) => {
            let (Some(Some(h)), Some(Some(w))) = (fixed.get(2), fixed.get(3)) else {
                return Err(input_error("needs fixed H and W dims (NCHW) to make them symbolic"));
            };
            Some((*h, *w, names.clone()))
        }
        None => None,
    };
    check_pins(graph, spatial.as_ref().map(|(h, w, _)| (*h, *w)), options.symbolic_batch.is_some())?;

    let symbol = |name: &str| Dimension { value: Some(DimValue::DimParam(name.to_owned())), denotation: None };
    if let Some(dims) = graph.input[0].tensor_type_mut().and_then(|t| t.shape.as_mut()).map(|s| &mut s.dim) {
        if let Some((_, _, (h, w))) = &spatial {
            dims[2] = symbol(h);
            dims[3] = symbol(w);
        }
        if let (Some(batch), Some(d)) = (&options.symbolic_batch, dims.first_mut()) {
            *d = symbol(batch);
        }
    }
    for output in &mut graph.output {
        let Some(dims) = output.tensor_type_mut().and_then(|t| t.shape.as_mut()).map(|s| &mut s.dim) else {
            continue;
        };
        for (i, d) in dims.iter_mut().enumerate() {
            let Some(DimValue::DimValue(v)) = d.value else { continue };
            if i == 0
                && let Some(batch) = &options.symbolic_batch
            {
                *d = symbol(batch);
                continue;
            }
            if let Some((h, w, (hn, wn))) = &spatial
                && let Some(s) = anchor_stride(v, *h, *w)
            {
                *d = if s == 1 { symbol(&format!("{hn}*{wn}")) } else { symbol(&format!("{hn}/{s}*{wn}/{s}")) };
            }
        }
    }
    stats.value_info_removed += graph.value_info.len();
    graph.value_info.clear();
    Ok(())
}

/// The stride `s` (1, 2, …, 32) for which `v == (h/s)*(w/s)`, if any.
fn anchor_stride(v: i64, h: i64, w: i64) -> Option<i64> {
    (0..=5).map(|k| 1i64 << k).find(|&s| h % s == 0 && w % s == 0 && v > 1 && v == (h / s) * (w / s))
}

/// Rejects constant shapes that would fix a dim meant to become symbolic: positive `Reshape`
/// targets equal to a size derived from H or W (or a leading positive batch entry), a `Resize`
/// given `sizes`, and an `Expand` to a constant shape with such values.
fn check_pins(graph: &GraphProto, spatial: Option<(i64, i64)>, batch: bool) -> Result<(), ConvertError> {
    let derived = |v: i64| {
        spatial.is_some_and(|(h, w)| {
            v > 1
                && (0..=5).map(|k| 1i64 << k).any(|s| {
                    (h % s == 0 && v == h / s) || (w % s == 0 && v == w / s) || anchor_stride(v, h, w).is_some()
                })
        })
    };
    for node in &graph.node {
        let pinned = |reason: String| ConvertError::PinnedShape {
            op: node.op().to_owned(),
            node: node.label().to_owned(),
            reason,
        };
        if node.is_onnx_op("Reshape") || node.is_onnx_op("Expand") {
            let Some(shape_name) = input(node, 1) else { continue };
            let Some(shape) = constant_ints(graph, shape_name) else { continue };
            if let Some(&v) = shape.iter().find(|&&v| derived(v)) {
                return Err(pinned(format!("constant shape {shape:?} holds {v}, derived from the input size")));
            }
            if batch && shape.first().is_some_and(|&v| v > 0) {
                return Err(pinned(format!("constant shape {shape:?} fixes the batch dim")));
            }
        }
        if node.is_onnx_op("Resize")
            && let Some(sizes) = input(node, 3)
            && (spatial.is_some() || batch)
        {
            return Err(pinned(format!("output sizes come from `{sizes}` instead of scales")));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proto::{TypeProto, ValueInfoProto, type_proto};

    fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        NodeProto {
            op_type: Some(op.into()),
            name: Some(format!("{op}_{}", outputs.first().unwrap_or(&""))),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn int_attr(name: &str, v: i64) -> AttributeProto {
        AttributeProto { name: Some(name.into()), i: Some(v), r#type: Some(attribute_type::INT), ..Default::default() }
    }

    fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
        ValueInfoProto {
            name: Some(name.into()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: Some(data_type::FLOAT),
                    shape: Some(crate::proto::TensorShapeProto {
                        dim: dims
                            .iter()
                            .map(|&d| Dimension { value: Some(DimValue::DimValue(d)), denotation: None })
                            .collect(),
                    }),
                })),
                denotation: None,
            }),
            ..Default::default()
        }
    }

    fn int8(name: &str, dims: &[i64], values: &[i8]) -> TensorProto {
        TensorProto {
            name: Some(name.into()),
            dims: dims.to_vec(),
            data_type: Some(data_type::INT8),
            raw_data: Some(values.iter().map(|&v| v as u8).collect()),
            ..Default::default()
        }
    }

    fn int64(name: &str, values: &[i64]) -> TensorProto {
        TensorProto {
            name: Some(name.into()),
            dims: vec![values.len() as i64],
            data_type: Some(data_type::INT64),
            int64_data: values.to_vec(),
            ..Default::default()
        }
    }

    /// input x [1,2,40,40] -> Conv(w) -> Dropout -> Reshape(shape) -> y, with w = Reshape(DQ(q)).
    fn small_model() -> ModelProto {
        let mut dq = node("DequantizeLinear", &["q", "s", "z"], &["w_dq"]);
        dq.attribute = vec![int_attr("axis", 1), int_attr("block_size", 2)];
        let graph = GraphProto {
            node: vec![
                dq,
                node("Reshape", &["w_dq", "w_shape"], &["w"]),
                node("Conv", &["x", "w"], &["c"]),
                node("Dropout", &["c"], &["d"]),
                node("Reshape", &["d", "flat"], &["y"]),
            ],
            initializer: vec![
                int8("q", &[2, 3], &[1, 2, 3, -1, -2, -3]),
                tensor::float_tensor("s", &[2, 2], &[0.5, 1.0, 2.0, 4.0]),
                int8("z", &[2, 2], &[0, 1, 0, -1]),
                int64("w_shape", &[2, 3, 1, 1]),
                int64("flat", &[1, -1, 2]),
                tensor::float_tensor("unused", &[1], &[0.0]),
            ],
            input: vec![value_info("x", &[1, 2, 40, 40]), value_info("w", &[2, 3, 1, 1]), value_info("stale", &[1])],
            output: vec![value_info("y", &[1, 1600, 2])],
            value_info: vec![value_info("w_dq", &[2, 3]), value_info("c", &[1, 2, 40, 40])],
            ..Default::default()
        };
        ModelProto { ir_version: Some(6), graph: Some(graph), ..Default::default() }
    }

    #[test]
    fn folds_prunes_and_rewires() {
        let mut model = small_model();
        let stats = convert(&mut model, &ConvertOptions::default()).unwrap();
        let g = model.graph.unwrap();
        let ops: Vec<&str> = g.node.iter().map(NodeProto::op).collect();
        assert_eq!(ops, ["Conv", "Reshape"]);
        assert_eq!(g.node[1].input[0], "c", "reader of the dropout now reads its input");
        let names: Vec<&str> = g.initializer.iter().map(TensorProto::label).collect();
        assert_eq!(names, ["flat", "w"]);
        let w = &g.initializer[1];
        assert_eq!(w.dims, vec![2, 3, 1, 1]);
        // Row 0: blocks [1,2]x0.5 zp 0, [3]x1.0 zp 1; row 1: [-1,-2]x2.0 zp 0, [-3]x4.0 zp -1.
        assert_eq!(tensor::float_values(w).unwrap(), vec![0.5, 1.0, 2.0, -2.0, -4.0, -8.0]);
        assert_eq!(g.input.iter().map(|i| i.label()).collect::<Vec<_>>(), ["x"]);
        assert_eq!(g.value_info.iter().map(|i| i.label()).collect::<Vec<_>>(), ["c"]);
        assert_eq!(stats.dequantize_folded.get("INT8 blocked axis=1 block_size=2"), Some(&1));
        assert_eq!((stats.reshapes_folded, stats.dropouts_removed, stats.inputs_removed), (1, 1, 2));
    }

    #[test]
    fn symbolic_dims() {
        let mut model = small_model();
        // Reshape [1,-1,2] keeps working at any H/W, but pins the batch.
        let options = ConvertOptions {
            symbolic_hw: Some(("height".into(), "width".into())),
            opset: Some(21),
            ..Default::default()
        };
        let stats = convert(&mut model, &options).unwrap();
        assert_eq!(stats.inputs, vec![("x".to_owned(), vec!["1".into(), "2".into(), "height".into(), "width".into()])]);
        assert_eq!(stats.outputs, vec![("y".to_owned(), vec!["1".into(), "height*width".into(), "2".into()])]);
        assert!(model.graph.unwrap().value_info.is_empty());

        let mut model = small_model();
        let options = ConvertOptions { symbolic_batch: Some("batch".into()), ..Default::default() };
        assert!(matches!(convert(&mut model, &options), Err(ConvertError::PinnedShape { .. })));
    }

    #[test]
    fn reshape_to_a_size_derived_constant_is_reported() {
        let mut model = small_model();
        let g = model.graph.as_mut().unwrap();
        g.initializer.push(int64("pinned", &[1, 2, 20, -1]));
        g.node[4].input[1] = "pinned".into();
        let options = ConvertOptions { symbolic_hw: Some(("h".into(), "w".into())), ..Default::default() };
        assert!(matches!(convert(&mut model, &options), Err(ConvertError::PinnedShape { .. })));
    }

    #[test]
    fn dropout_feeding_a_graph_output_becomes_identity() {
        let graph = GraphProto {
            node: vec![node("Relu", &["x"], &["r"]), node("Dropout", &["r", "ratio"], &["y", "mask"])],
            initializer: vec![tensor::float_tensor("ratio", &[], &[0.5])],
            input: vec![value_info("x", &[1])],
            output: vec![value_info("y", &[1])],
            ..Default::default()
        };
        let mut model = ModelProto { graph: Some(graph), ..Default::default() };
        convert(&mut model, &ConvertOptions::default()).unwrap();
        let g = model.graph.unwrap();
        assert_eq!(g.node[1].op(), "Identity");
        assert_eq!(g.node[1].input, vec!["r"]);
        assert!(g.initializer.is_empty());
    }

    /// x [1,3,4,4] -> PRelu(slope) -> y, plus a PRelu whose slope has an unsupported shape.
    fn prelu_model(slope_dims: &[usize]) -> ModelProto {
        let graph = GraphProto {
            node: vec![node("PRelu", &["x", "slope"], &["y"])],
            initializer: vec![tensor::float_tensor("slope", slope_dims, &[0.25, -0.5, 1.5])],
            input: vec![value_info("x", &[1, 3, 4, 4])],
            output: vec![value_info("y", &[1, 3, 4, 4])],
            ..Default::default()
        };
        ModelProto { graph: Some(graph), ..Default::default() }
    }

    #[test]
    fn prelu_with_per_channel_slope_becomes_conv_relu_conv_add() {
        for dims in [&[3, 1, 1][..], &[1, 3, 1, 1]] {
            let mut model = prelu_model(dims);
            let stats = convert(&mut model, &ConvertOptions::default()).unwrap();
            assert_eq!(stats.prelus_rewritten, 1);
            let g = model.graph.unwrap();
            let ops: Vec<&str> = g.node.iter().map(NodeProto::op).collect();
            assert_eq!(ops, ["Conv", "Relu", "Conv", "Add"]);
            let [n1, n2, n3, add] = &g.node[..] else { unreachable!() };
            assert_eq!(n1.input, ["x", "y__neg_w"]);
            assert_eq!(n2.input, n1.output);
            assert_eq!(n3.input, [n2.output[0].as_str(), "y__one_minus_slope_w"]);
            assert_eq!(add.input, [String::from("x"), n3.output[0].clone()]);
            assert_eq!(add.output, ["y"]);
            for conv in [n1, n3] {
                assert_eq!(conv.attr_int("group", 0), 3);
                assert_eq!(conv.attr("kernel_shape").unwrap().ints, [1, 1]);
                assert_eq!(conv.input.len(), 2, "no bias");
            }
            let names: HashSet<&str> = g.node.iter().map(NodeProto::label).collect();
            assert_eq!(names.len(), 4, "node names are unique");
            let init = |name: &str| g.initializer.iter().find(|t| t.label() == name).unwrap();
            assert!(g.initializer.iter().all(|t| t.label() != "slope"), "the slope is pruned");
            let neg = init("y__neg_w");
            assert_eq!(neg.dims, [3, 1, 1, 1]);
            assert_eq!(tensor::float_values(neg).unwrap(), [-1.0, -1.0, -1.0]);
            let scale = init("y__one_minus_slope_w");
            assert_eq!(scale.dims, [3, 1, 1, 1]);
            assert_eq!(tensor::float_values(scale).unwrap(), [0.75, 1.5, -0.5]);

            // y = x + (1 - a)·relu(-x) equals PRelu for both signs of x and of a.
            let a = [0.25f32, -0.5, 1.5];
            let w = tensor::float_values(scale).unwrap();
            for (c, &x) in [-2.0f32, 3.0, -0.5].iter().enumerate() {
                for x in [x, -x] {
                    let prelu = if x < 0.0 { a[c] * x } else { x };
                    assert_eq!(x + w[c] * (-x).max(0.0), prelu);
                }
            }
        }
    }

    #[test]
    fn prelu_with_other_slopes_is_left_alone() {
        // [C] broadcasts along W of an NCHW input; a non-constant slope cannot be rewritten.
        let mut model = prelu_model(&[3]);
        let stats = convert(&mut model, &ConvertOptions::default()).unwrap();
        assert_eq!(stats.prelus_rewritten, 0);
        let g = model.graph.unwrap();
        assert_eq!(g.node.iter().map(NodeProto::op).collect::<Vec<_>>(), ["PRelu"]);
        assert_eq!(g.initializer.len(), 1);

        let mut model = prelu_model(&[3, 1, 1]);
        let g = model.graph.as_mut().unwrap();
        g.initializer.clear();
        g.input.push(value_info("slope", &[3, 1, 1]));
        let stats = convert(&mut model, &ConvertOptions::default()).unwrap();
        assert_eq!(stats.prelus_rewritten, 0);
    }

    #[test]
    fn prelu_rewrite_names_do_not_collide() {
        let mut model = prelu_model(&[3, 1, 1]);
        let g = model.graph.as_mut().unwrap();
        // Something already called `y__neg_w` that the graph keeps.
        g.initializer.push(tensor::float_tensor("y__neg_w", &[1], &[7.0]));
        g.node.push(node("Add", &["y", "y__neg_w"], &["z"]));
        g.output = vec![value_info("z", &[1, 3, 4, 4])];
        convert(&mut model, &ConvertOptions::default()).unwrap();
        let g = model.graph.unwrap();
        assert_eq!(g.node[0].input[1], "y__neg_w_1");
        let taken = g.initializer.iter().find(|t| t.label() == "y__neg_w").unwrap();
        assert_eq!(tensor::float_values(taken).unwrap(), [7.0]);
    }

    #[test]
    fn dequantize_of_a_runtime_value_is_left_alone() {
        let graph = GraphProto {
            node: vec![node("DequantizeLinear", &["x", "s"], &["y"])],
            initializer: vec![tensor::float_tensor("s", &[], &[0.5])],
            input: vec![value_info("x", &[1])],
            output: vec![value_info("y", &[1])],
            ..Default::default()
        };
        let mut model = ModelProto { graph: Some(graph), ..Default::default() };
        let stats = convert(&mut model, &ConvertOptions::default()).unwrap();
        assert!(stats.dequantize_folded.is_empty());
        assert_eq!(model.graph.unwrap().node.len(), 1);
    }
}
