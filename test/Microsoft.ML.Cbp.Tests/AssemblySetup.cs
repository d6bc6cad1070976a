using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;

[assembly: DoNotParallelize]

namespace Microsoft.ML.Cbp.Tests;

[TestClass]
public static class AssemblySetup
{
    [AssemblyInitialize]
    public static void Initialize(TestContext context)
    {
        // Two torch threads on two contended cores can be 10x slower than one; tests are small anyway.
        torch.set_num_threads(1);
    }
}
