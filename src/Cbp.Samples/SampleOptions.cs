using System;
using System.IO;
using Microsoft.ML.Cbp;

namespace Cbp.Samples;

/// <summary>A sample's command-line settings.</summary>
public sealed class SampleOptions
{
    /// <summary>The sample to run.</summary>
    public string Sample { get; set; } = "fashion-mnist";

    /// <summary>The level set.</summary>
    public WeightConstraint Constraint { get; set; } = WeightConstraint.Binary;

    /// <summary>CBP epochs (passes over the data).</summary>
    public int Epochs { get; set; } = 12;

    /// <summary>Whether --epochs was given (samples other than fashion-mnist have their own default).</summary>
    public bool EpochsGiven { get; set; }

    /// <summary>Whether --constraint was given (samples have their own default level set).</summary>
    public bool ConstraintGiven { get; set; }

    /// <summary>Float pre-training epochs.</summary>
    public int PretrainEpochs { get; set; } = 5;

    /// <summary>A few seconds' run on little data (for tests and smoke runs).</summary>
    public bool Quick { get; set; }

    /// <summary>Use the whole Fashion-MNIST from the Debian package instead of the shipped subset.</summary>
    public bool Full { get; set; }

    /// <summary>Where models, predictions and plots are written.</summary>
    public string OutputDirectory { get; set; } = Path.GetFullPath("cbp-output");

    /// <summary>Input file of samples that read one (QuantizeOnnx's model, BatchScore's model and CSV).</summary>
    public string? Input { get; set; }

    /// <summary>Second input file (BatchScore's CSV).</summary>
    public string? Data { get; set; }

    /// <summary>TorchSharp threads, when given (--threads N); otherwise TorchSharp's default, one per core.</summary>
    public int? Threads { get; set; }

    /// <summary>fashion-mnist: the compact file's size budget in bytes (mixed precision chosen per layer); null: one level set.</summary>
    public long? MaxBytes { get; set; }

    /// <summary>fashion-mnist (--low-bit): the constrained fully connected layers run as ONNX Runtime's MatMulNBits, kept as codes in memory.</summary>
    public bool LowBit { get; set; }
}

/// <summary>A problem the user can fix (bad argument, missing file): printed without a stack trace, exit code 2.</summary>
public sealed class SampleException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong and what to do.</param>
    public SampleException(string message) : base(message)
    {
    }
}
