using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Cbp.Pipeline;

/// <summary>
/// Every use of ML.NET internals, in one place: the MLContext's environment behind a catalog (its log, seed, GPU
/// settings), and the layout of a saved model zip. ML.NET keeps these internal; each member named here is pinned by
/// <c>MLNetInternalsTests</c>, so an ML.NET upgrade that renames one fails a test instead of silently changing a user's seed
/// or scoring device.
/// </summary>
/// <remarks>
/// A member that has disappeared raises <see cref="InvalidOperationException"/> naming it and the ML.NET version this
/// library was built against (<see cref="BuiltAgainst"/>), never a silent default.
/// </remarks>
internal static class MLNetInternals
{
    /// <summary>The ML.NET version whose internals are pinned here.</summary>
    internal const string BuiltAgainst = "Microsoft.ML 5.0.1";

    /// <summary>The private field of <see cref="TransformsCatalog"/> and <see cref="ModelOperationsCatalog"/> that holds the MLContext's environment.</summary>
    internal const string CatalogEnvironmentField = "_env";

    /// <summary>The environment's seed (<c>MLContext(seed: ...)</c>), an <c>int?</c>.</summary>
    internal const string SeedProperty = "Seed";

    /// <summary>The environment's <c>MLContext.GpuDeviceId</c>, an <c>int?</c>.</summary>
    internal const string GpuDeviceIdProperty = "GpuDeviceId";

    /// <summary>The environment's <c>MLContext.FallbackToCpu</c>, a <c>bool</c>.</summary>
    internal const string FallbackToCpuProperty = "FallbackToCpu";

    /// <summary>The zip entry, inside a saved transformer's folder, where ML.NET's OnnxTransformer keeps its model: an int32 length, then the bytes.</summary>
    internal const string OnnxModelEntry = "OnnxModel";

    /// <summary>The folder name ML.NET gives step i of a saved <c>TransformerChain</c>.</summary>
    private static readonly Regex TransformFolder = new(@"^Transform_(\d+)$", RegexOptions.CultureInvariant);

    private const BindingFlags Instance = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance;

    /// <summary>The environment behind an MLContext catalog (<c>mlContext.Transforms</c>, <c>mlContext.Model</c>).</summary>
    /// <param name="catalog">The catalog.</param>
    /// <exception cref="InvalidOperationException">The catalog no longer keeps its environment where this library looks.</exception>
    public static IHostEnvironment Environment(object catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        var field = catalog.GetType().GetField(CatalogEnvironmentField, Instance) ?? throw Missing($"{catalog.GetType().Name}.{CatalogEnvironmentField}");
        return field.GetValue(catalog) as IHostEnvironment ?? throw Missing($"{catalog.GetType().Name}.{CatalogEnvironmentField} (an IHostEnvironment)");
    }

    /// <summary>The MLContext's seed, or null when it was created without one.</summary>
    /// <param name="environment">From <see cref="Environment"/>.</param>
    public static int? Seed(IHostEnvironment environment) => (int?)Property(environment, SeedProperty, typeof(int?));

    /// <summary>The MLContext's GpuDeviceId.</summary>
    /// <param name="environment">From <see cref="Environment"/>.</param>
    public static int? GpuDeviceId(IHostEnvironment environment) => (int?)Property(environment, GpuDeviceIdProperty, typeof(int?));

    /// <summary>The MLContext's FallbackToCpu.</summary>
    /// <param name="environment">From <see cref="Environment"/>.</param>
    public static bool FallbackToCpu(IHostEnvironment environment) => (bool)Property(environment, FallbackToCpuProperty, typeof(bool))!;

    /// <summary>
    /// The ONNX models that OnnxTransformers saved in a model zip, each with the position of the chain that holds it
    /// (step indices from the outermost chain, "/"-separated; "" for the top chain).
    /// </summary>
    /// <param name="filePath">A zip written by <c>mlContext.Model.Save</c>.</param>
    public static IReadOnlyList<(string ChainPosition, byte[] OnnxBytes)> OnnxModels(string filePath)
    {
        var models = new List<(string, byte[])>();
        using var zip = ZipFile.OpenRead(filePath);
        foreach (var entry in zip.Entries.Where(e => e.FullName.EndsWith("/" + OnnxModelEntry, StringComparison.Ordinal)))
        {
            using var stream = entry.Open();
            using var reader = new BinaryReader(stream);
            int length = reader.ReadInt32();
            var bytes = reader.ReadBytes(length);
            if (bytes.Length != length)
            {
                throw new InvalidDataException($"Zip entry '{entry.FullName}' of '{filePath}' declares {length} bytes of ONNX model but holds {bytes.Length}.");
            }
            var indices = entry.FullName.Split('/').Select(s => TransformFolder.Match(s)).Where(m => m.Success)
                .Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToArray();
            // The OnnxTransformer is a step of a chain; the chain itself sits one level up.
            models.Add((string.Join("/", indices.Take(Math.Max(0, indices.Length - 1))), bytes));
        }
        return models;
    }

    private static object? Property(IHostEnvironment environment, string name, Type type)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var property = environment.GetType().GetProperty(name, Instance);
        if (property is null || property.PropertyType != type)
        {
            throw Missing($"{environment.GetType().Name}.{name} ({type.Name})");
        }
        return property.GetValue(environment);
    }

    private static InvalidOperationException Missing(string member) => new(
        $"Microsoft.ML.Cbp reads the MLContext's settings through ML.NET's internal member {member}, which this version of ML.NET does not have " +
        $"(the library was built against {BuiltAgainst}). Use the ML.NET version the package asks for, or set the option explicitly (Seed, GpuDeviceId, FallbackToCpu).");
}
