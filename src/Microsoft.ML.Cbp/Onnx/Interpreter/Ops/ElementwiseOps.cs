using System.Collections.Generic;
using Microsoft.ML.Cbp.Constraints;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx.Ops;

/// <summary>Element-wise arithmetic and activations: Add, Sub, Mul, Div, Relu, LeakyRelu, Sigmoid, Tanh, Clip, HardSigmoid, HardSwish, Identity, Dropout.</summary>
internal static class ElementwiseOps
{
    public static void Register(IDictionary<string, OnnxOpImplementation> ops)
    {
        // Numpy-style broadcasting is torch's. Opsets before 7 used a 'broadcast' attribute; they are not supported.
        ops["Add"] = c => new[] { c.Input(0).Plus(c.Input(1)) };
        ops["Sub"] = c => new[] { c.Input(0) - c.Input(1) };
        ops["Mul"] = c => new[] { c.Input(0) * c.Input(1) };
        ops["Div"] = c =>
        {
            var a = c.Input(0);
            var b = c.Input(1);
            // ONNX integer division truncates; torch's true division would give floats.
            return new[] { torch.is_integral(a.dtype) ? a.div(b, RoundingMode.trunc) : a / b };
        };
        ops["Relu"] = c => new[] { c.Input(0).relu() };
        ops["LeakyRelu"] = c => new[] { nn.functional.leaky_relu(c.Input(0), c.Float("alpha", 0.01f)) };
        ops["Sigmoid"] = c => new[] { c.Input(0).sigmoid() };
        ops["Tanh"] = c => new[] { c.Input(0).tanh() };
        ops["Clip"] = c =>
        {
            // Opset 11 moved min and max from attributes to optional inputs.
            double low = c.ScalarFromInputOrAttribute(1, "min", double.NegativeInfinity);
            double high = c.ScalarFromInputOrAttribute(2, "max", double.PositiveInfinity);
            return new[] { c.Input(0).clamp(low, high) };
        };
        // HardSigmoid = max(0, min(1, alpha x + beta)); defaults alpha 0.2, beta 0.5 (torch's uses 1/6: not the same op).
        ops["HardSigmoid"] = c => new[] { c.Input(0).mul(c.Float("alpha", 0.2f)).add_(c.Float("beta", 0.5f)).clamp_(0, 1) };
        // HardSwish = x * max(0, min(1, x / 6 + 1/2)), which is torch's hardswish.
        ops["HardSwish"] = c => new[] { nn.functional.hardswish(c.Input(0)) };
        ops["Identity"] = c => new[] { c.Input(0).alias() };
        ops["Dropout"] = c =>
        {
            // Opset 12 moved the ratio to an optional input; training_mode (input 2) is the module's mode here.
            double ratio = c.ScalarFromInputOrAttribute(1, "ratio", 0.5);
            var x = c.Input(0);
            var y = c.Training && ratio > 0 ? nn.functional.dropout(x, ratio, training: true) : x.alias();
            return new[] { y };
        };
    }
}
