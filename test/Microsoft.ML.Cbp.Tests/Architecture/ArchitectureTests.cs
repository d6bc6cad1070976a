using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests.Architecture;

/// <summary>
/// The library's layers and their one-way dependencies (docs/architecture.md), enforced on the compiled assembly: each
/// type belongs to the layer of the folder its source file is in (C# sub-namespaces see parent types without a
/// <c>using</c>, so namespaces prove nothing), and every type reference found in its metadata and IL must point to a
/// layer it may use, or to an external assembly its layer may use.
/// </summary>
[TestClass]
public sealed class ArchitectureTests
{
    /// <summary>The layers, as folders under src/Microsoft.ML.Cbp ("" is the root folder), in dependency order.</summary>
    internal static readonly string[] Layers =
    {
        "", "Options", "Pipeline", "Training", "Onnx/Format", "Onnx/Interpreter", "Onnx/Export", "Onnx/Architectures", "Data", "Scoring", "Constraints",
    };

    /// <summary>Which layers each layer may use (besides itself): the map of docs/architecture.md.</summary>
    private static readonly Dictionary<string, string[]> Allowed = new()
    {
        [""] = Layers,
        ["Options"] = new[] { "Training", "Onnx/Format", "Onnx/Interpreter", "Onnx/Export", "Onnx/Architectures", "Data", "Scoring", "Constraints" },
        ["Pipeline"] = new[] { "Options", "Training", "Onnx/Format", "Onnx/Interpreter", "Onnx/Export", "Onnx/Architectures", "Data", "Scoring", "Constraints" },
        ["Training"] = new[] { "Constraints" },
        ["Onnx/Format"] = new[] { "Constraints" },
        ["Onnx/Interpreter"] = new[] { "Onnx/Format", "Constraints" },
        ["Onnx/Export"] = new[] { "Onnx/Format", "Onnx/Interpreter", "Constraints" },
        ["Onnx/Architectures"] = new[] { "Onnx/Format", "Onnx/Interpreter", "Constraints" },
        ["Data"] = new[] { "Training", "Constraints" },
        ["Scoring"] = new[] { "Onnx/Format", "Constraints" },
        ["Constraints"] = Array.Empty<string>(),
    };

    /// <summary>External assemblies (by name prefix) each layer must not use.</summary>
    private static readonly Dictionary<string, string[]> Forbidden = new()
    {
        ["Training"] = new[] { "Microsoft.ML", "OnnxSharp", "Google.Protobuf" },
        ["Onnx/Format"] = new[] { "Microsoft.ML", "TorchSharp" },
        ["Onnx/Interpreter"] = new[] { "Microsoft.ML" },
        ["Onnx/Export"] = new[] { "Microsoft.ML" },
        ["Onnx/Architectures"] = new[] { "Microsoft.ML" },
        ["Scoring"] = new[] { "TorchSharp" },
        ["Constraints"] = new[] { "Microsoft.ML", "OnnxSharp", "Google.Protobuf" },
    };

    /// <summary>Types the compiler embeds in the assembly (nullable attributes and friends): they have no source file.</summary>
    private static readonly string[] CompilerNamespaces = { "Microsoft.CodeAnalysis", "System.Runtime.CompilerServices" };

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void EveryDependencyFollowsTheLayerMap()
    {
        var (layerOf, dependencies) = Measure();
        var violations = new List<string>();
        foreach (var (type, uses) in dependencies)
        {
            string layer = layerOf[type];
            var allowed = Allowed[layer].Append(layer).ToHashSet();
            foreach (var dependency in uses)
            {
                if (dependency.Assembly == LibraryName)
                {
                    if (layerOf.TryGetValue(dependency.FullName, out var used) && !allowed.Contains(used))
                    {
                        violations.Add($"{Show(layer)} {type} uses {Show(used)} {dependency.FullName}");
                    }
                }
                else if (Forbidden.TryGetValue(layer, out var external) && external.Any(e => dependency.Assembly.StartsWith(e, StringComparison.Ordinal)))
                {
                    violations.Add($"{Show(layer)} {type} uses {dependency.Assembly}: {dependency.FullName}");
                }
            }
        }
        Assert.AreEqual(0, violations.Count, "Dependencies outside the layer map:\n" + string.Join("\n", violations.OrderBy(v => v, StringComparer.Ordinal)));
    }

    [TestMethod]
    public void TheMeasuredMapIsPrintedAndEveryLayerIsUsed()
    {
        var (layerOf, dependencies) = Measure();
        var map = Layers.ToDictionary(l => l, _ => new SortedSet<string>(StringComparer.Ordinal));
        var external = Layers.ToDictionary(l => l, _ => new SortedSet<string>(StringComparer.Ordinal));
        foreach (var (type, uses) in dependencies)
        {
            foreach (var dependency in uses)
            {
                if (dependency.Assembly == LibraryName)
                {
                    if (layerOf.TryGetValue(dependency.FullName, out var used) && used != layerOf[type])
                    {
                        map[layerOf[type]].Add(Show(used));
                    }
                }
                else if (ExternalFamily(dependency.Assembly) is { } family)
                {
                    external[layerOf[type]].Add(family);
                }
            }
        }
        var table = new StringBuilder("| layer (folder) | uses layers | uses packages |\n|---|---|---|\n");
        foreach (var layer in Layers)
        {
            table.Append(CultureInvariant($"| {Show(layer)} | {string.Join(", ", map[layer])} | {string.Join(", ", external[layer])} |\n"));
        }
        TestContext.WriteLine(table.ToString());
        // Known uses, read off the code by hand, prove the reader sees calls, fields and generic arguments alike.
        CollectionAssert.IsSubsetOf(new[] { "Training/", "Data/", "Scoring/", "Options/" }, map["Pipeline"].ToList(), "Pipeline runs the engine, reads data, builds the scoring output");
        CollectionAssert.Contains(map["Scoring"].ToList(), "Onnx/Format/", "the scoring graph is built with the format layer");
        CollectionAssert.Contains(external["Training"].ToList(), "TorchSharp");
        CollectionAssert.Contains(external["Scoring"].ToList(), "ONNX Runtime");
        // Every layer but the root is used by some other layer: a layer nobody uses would be dead or misfiled.
        foreach (var layer in Layers.Skip(1))
        {
            Assert.IsTrue(map.Values.Any(uses => uses.Contains(Show(layer))), $"No layer uses {Show(layer)}.");
        }
        Assert.IsFalse(external["Scoring"].Contains("TorchSharp"), "Scoring never references TorchSharp.");
    }

    [TestMethod]
    public void EverySourceFileSitsInALayerFolderAndDeclaresItsNamespace()
    {
        var problems = new List<string>();
        foreach (var (file, layer, ns) in SourceFiles())
        {
            if (layer is null)
            {
                problems.Add($"{file} is not in a layer folder ({string.Join(", ", Layers.Select(Show))}).");
                continue;
            }
            // Public surface types keep the namespace users write (Microsoft.ML, Microsoft.ML.Cbp, .Training, .Onnx); the
            // internal layers use the namespace of their folder's top level.
            string[] expected = layer switch
            {
                "" => new[] { "Microsoft.ML", "Microsoft.ML.Cbp" },
                "Options" or "Constraints" => new[] { "Microsoft.ML.Cbp", "Microsoft.ML.Cbp.Constraints" },
                _ when layer.StartsWith("Onnx/", StringComparison.Ordinal) => new[] { "Microsoft.ML.Cbp", "Microsoft.ML.Cbp.Onnx", "Microsoft.ML.Cbp.Onnx.Ops", "Microsoft.ML.Cbp.Onnx.Architectures" },
                _ => new[] { "Microsoft.ML.Cbp." + layer },
            };
            if (ns is null || !expected.Contains(ns))
            {
                problems.Add($"{file} declares namespace {ns ?? "(none)"}; files in {Show(layer)} use {string.Join(" or ", expected)}.");
            }
        }
        Assert.AreEqual(0, problems.Count, string.Join("\n", problems));
    }

    private static string LibraryName => typeof(CbpQuantizeEstimator).Assembly.GetName().Name!;

    private static string Show(string layer) => layer.Length == 0 ? "(root)" : layer + "/";

    private static string CultureInvariant(FormattableString text) => FormattableString.Invariant(text);

    /// <summary>The external packages a layer's dependencies come from, grouped as a reader knows them.</summary>
    private static string? ExternalFamily(string assembly) => assembly switch
    {
        _ when assembly.StartsWith("Microsoft.ML.OnnxRuntime", StringComparison.Ordinal) => "ONNX Runtime",
        _ when assembly.StartsWith("Microsoft.ML", StringComparison.Ordinal) => "ML.NET",
        _ when assembly.StartsWith("TorchSharp", StringComparison.Ordinal) => "TorchSharp",
        "OnnxSharp" or "Google.Protobuf" => "ONNX protobuf",
        _ => null,
    };

    /// <summary>The layer of every type (from its source file) and the dependencies of every type (from the compiled assembly).</summary>
    private static (Dictionary<string, string> LayerOf, Dictionary<string, HashSet<TypeDependency>> Dependencies) Measure()
    {
        var layerOf = new Dictionary<string, string>(StringComparer.Ordinal);
        var declaration = new Regex(@"^(?:public|internal)\s+(?:(?:sealed|static|abstract|partial|readonly)\s+)*(?:(?:class|struct|interface|enum|record(?:\s+struct|\s+class)?)\s+(\w+)(?:<([^>]*)>)?|delegate\s+[\w\[\]<>,\s]+?\s+(\w+)\s*(?:<([^>]*)>)?\s*\()", RegexOptions.Multiline);
        foreach (var (file, layer, ns) in SourceFiles())
        {
            foreach (Match m in declaration.Matches(File.ReadAllText(file)))
            {
                string name = m.Groups[1].Success ? m.Groups[1].Value : m.Groups[3].Value;
                var generics = m.Groups[2].Success ? m.Groups[2].Value : m.Groups[4].Value;
                if (generics.Length > 0)
                {
                    name += "`" + (generics.Count(c => c == ',') + 1);
                }
                layerOf[$"{ns}.{name}"] = layer ?? throw new AssertFailedException($"{file} is not in a layer folder.");
            }
        }
        var library = typeof(CbpQuantizeEstimator).Assembly.Location;
        var dependencies = AssemblyDependencies.Read(library);
        foreach (var type in dependencies.Keys.Where(t => !CompilerNamespaces.Any(n => t.StartsWith(n + ".", StringComparison.Ordinal))))
        {
            Assert.IsTrue(layerOf.ContainsKey(type), $"Type {type} of the compiled library has no declaration found in a source file.");
        }
        foreach (var type in dependencies.Keys.Where(t => !layerOf.ContainsKey(t)).ToList())
        {
            dependencies.Remove(type);
        }
        return (layerOf, dependencies);
    }

    /// <summary>Each C# source file of the library with its layer (null outside every layer folder) and its file-scoped namespace.</summary>
    private static IEnumerable<(string File, string? Layer, string? Namespace)> SourceFiles()
    {
        string root = Path.Combine(RepositoryRoot(), "src", "Microsoft.ML.Cbp");
        foreach (var file in Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(root, file).Replace('\\', '/');
            if (relative.StartsWith("obj/", StringComparison.Ordinal) || relative.StartsWith("bin/", StringComparison.Ordinal))
            {
                continue;
            }
            string folder = Path.GetDirectoryName(relative)?.Replace('\\', '/') ?? "";
            string? layer = Layers.Where(l => folder == l || (l.Length > 0 && folder.StartsWith(l + "/", StringComparison.Ordinal)))
                .OrderByDescending(l => l.Length).FirstOrDefault();
            var ns = Regex.Match(File.ReadAllText(file), @"^namespace\s+([\w.]+)\s*;", RegexOptions.Multiline);
            yield return (file, layer, ns.Success ? ns.Groups[1].Value : null);
        }
    }

    /// <summary>The repository root: the nearest folder above the test binaries that holds Cbp.sln.</summary>
    internal static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Cbp.sln")))
            {
                return dir.FullName;
            }
        }
        throw new AssertFailedException($"No Cbp.sln above {AppContext.BaseDirectory}: the architecture tests read the library's sources.");
    }
}
