using System.Collections.Generic;
using Microsoft.ML.Cbp.Constraints;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Onnx.Ops;

/// <summary>Element-wise arithmetic and activations: Add, Sub, Mul, Div, Relu, LeakyRelu, Sigmoid, Tanh, Clip, HardSigmoid, HardSwish, Identity, Cast, Dropout.</summary>
internal static class ElementwiseOps
{
    /// <summary>ONNX's FLOAT16 element type.</summary>
    private const long Float16 = 10;

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
        ops["Cast"] = c =>
        {
            // The interpreter computes in float32: a cast to double stays float32, and one to float16 rounds as ONNX
            // Runtime does and comes back to float32. Float to integer truncates toward zero, as ONNX specifies.
            long to = OnnxAttributes.Int(c.Node, "to", 0);
            var x = c.Input(0);
            return new[]
            {
                to switch
                {
                    OnnxTensorConversion.DataTypes.Float or OnnxTensorConversion.DataTypes.Double => x.to(float32),
                    Float16 => x.to(float16).to(float32),
                    OnnxTensorConversion.DataTypes.Int64 => x.to(int64),
                    OnnxTensorConversion.DataTypes.Int32 => x.to(int32),
                    OnnxTensorConversion.DataTypes.Int8 => x.to(int8),
                    OnnxTensorConversion.DataTypes.UInt8 => x.to(uint8),
                    OnnxTensorConversion.DataTypes.Bool => x.to(@bool),
                    _ => throw c.Unsupported($"casting to ONNX type {to} is not supported (float, double, float16, int64, int32, int8, uint8 and bool are)."),
                },
            };
        };
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
