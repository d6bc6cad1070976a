using System;
using Microsoft.ML.Cbp;
using Microsoft.ML.Cbp.Pipeline;

namespace Microsoft.ML;

/// <summary>Constrained backpropagation in ML.NET pipelines: <c>mlContext.Transforms.CbpQuantize(...)</c>.</summary>
public static class CbpCatalog
{
    /// <summary>
    /// Trains a network whose weights take only the values of <paramref name="constraint"/> times a per-layer scale, and
    /// scores it with ONNX Runtime. See <see cref="CbpQuantizeEstimator"/> and <see cref="CbpQuantizeOptions"/> for the
    /// defaults of everything not named here.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="labelColumnName">Label column: key (multiclass), Boolean (binary) or Single (regression).</param>
    /// <param name="featureColumnName">Feature column: a known-size vector of Single.</param>
    /// <param name="constraint">The level set; default <see cref="WeightConstraint.Binary"/>.</param>
    /// <param name="inputShape">How the network sees a feature vector, e.g. { 1, 28, 28 }; default the vector itself.</param>
    /// <param name="architecture">The built-in network; default a small CNN for 3-D input shapes, an MLP otherwise.</param>
    /// <param name="epochs">CBP epochs; default 20.</param>
    /// <example>
    /// <code>
    /// var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
    ///     .Append(ml.Transforms.CbpQuantize("Label", "Features", WeightConstraint.Ternary, inputShape: new[] { 1, 28, 28 }));
    /// </code>
    /// </example>
    public static CbpQuantizeEstimator CbpQuantize(
        this TransformsCatalog catalog,
        string labelColumnName = "Label",
        string featureColumnName = "Features",
        WeightConstraint? constraint = null,
        int[]? inputShape = null,
        CbpArchitecture? architecture = null,
        int epochs = 20) =>
        catalog.CbpQuantize(new CbpQuantizeOptions
        {
            LabelColumnName = labelColumnName,
            FeatureColumnName = featureColumnName,
            Constraint = constraint ?? WeightConstraint.Binary,
            InputShape = inputShape,
            Architecture = architecture,
            Epochs = epochs,
        });

    /// <summary>Trains and quantizes a network with every option of <see cref="CbpQuantizeOptions"/>.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">The options; validated here.</param>
    /// <exception cref="ArgumentException">An option is invalid; the message names it.</exception>
    public static CbpQuantizeEstimator CbpQuantize(this TransformsCatalog catalog, CbpQuantizeOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        return new CbpQuantizeEstimator(MLNetInternals.Environment(catalog), options);
    }
}
