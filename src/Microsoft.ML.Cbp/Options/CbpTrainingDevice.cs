namespace Microsoft.ML.Cbp;

/// <summary>Where the network trains.</summary>
public enum CbpTrainingDevice
{
    /// <summary>CUDA when TorchSharp sees a GPU (and a CUDA libtorch backend is referenced), otherwise the CPU.</summary>
    Auto,

    /// <summary>Always the CPU (deterministic for a given seed).</summary>
    Cpu,

    /// <summary>CUDA; fails when no GPU is usable.</summary>
    Cuda,
}
