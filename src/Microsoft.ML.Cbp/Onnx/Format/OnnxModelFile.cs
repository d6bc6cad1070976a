using System;
using System.IO;
using System.Linq;
using Google.Protobuf;
using Onnx;

namespace Microsoft.ML.Cbp.Onnx;

/// <summary>Reads and writes ONNX model files (<c>ModelProto</c>), keeping fields this code does not interpret.</summary>
/// <remarks>
/// Parsing goes through the generated protobuf classes, which keep unknown fields: a load-save round trip of a model
/// written by a newer ONNX version loses nothing. Writes go to a temporary file that is moved into place, so a
/// failed or cancelled write never leaves a truncated model behind.
/// </remarks>
public static class OnnxModelFile
{
    /// <summary>Parses an ONNX model from bytes.</summary>
    /// <param name="bytes">The serialized <c>ModelProto</c>.</param>
    /// <param name="source">What to call the model in error messages (a path, or a description).</param>
    /// <exception cref="InvalidDataException">The bytes are not a valid ONNX model, or the model has no graph.</exception>
    public static ModelProto Parse(byte[] bytes, string source = "the model bytes")
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length == 0)
        {
            throw new InvalidDataException($"{source} is empty; expected a serialized ONNX ModelProto.");
        }
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"{source} is not a valid ONNX model ({bytes.Length} bytes; truncated or not ONNX): {e.Message}", e);
        }
        if (model.Graph is null || model.Graph.Node.Count == 0)
        {
            throw new InvalidDataException($"{source} has no graph nodes; it is not an ONNX model (or an empty one).");
        }
        return model;
    }

    /// <summary>Loads an ONNX model file.</summary>
    /// <param name="path">Path of the <c>.onnx</c> file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a valid ONNX model.</exception>
    public static ModelProto Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"ONNX model file '{path}' does not exist.", path);
        }
        return Parse(File.ReadAllBytes(path), $"'{path}'");
    }

    /// <summary>Serializes a model to bytes.</summary>
    /// <param name="model">The model.</param>
    public static byte[] ToBytes(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.ToByteArray();
    }

    /// <summary>Writes a model to <paramref name="path"/> atomically (temporary file, then move).</summary>
    /// <param name="model">The model.</param>
    /// <param name="path">Destination; its folder is created when missing; an existing file is replaced.</param>
    public static void Save(ModelProto model, string path) => WriteAtomically(ToBytes(model), path);

    /// <summary>Writes bytes to <paramref name="path"/> through a temporary file in the same folder.</summary>
    /// <param name="bytes">The content.</param>
    /// <param name="path">Destination.</param>
    public static void WriteAtomically(byte[] bytes, string path)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        string temp = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.cbp-tmp");
        try
        {
            File.WriteAllBytes(temp, bytes);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    /// <summary>The default-domain opset a model imports.</summary>
    /// <param name="model">The model.</param>
    public static int DefaultOpset(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var entry = model.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx");
        return entry is null
            ? throw new InvalidDataException("The model imports no default-domain (ai.onnx) opset.")
            : (int)entry.Version;
    }
}
