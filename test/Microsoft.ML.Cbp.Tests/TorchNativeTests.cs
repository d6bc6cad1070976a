using Microsoft.VisualStudio.TestTools.UnitTesting;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Tests;

[TestClass]
public sealed class TorchNativeTests
{
    [TestMethod]
    public void TorchLoadsAndMultipliesMatrices()
    {
        // [[1,2],[3,4]] @ [[5,6],[7,8]] = [[19,22],[43,50]], by hand.
        using var a = tensor(new float[] { 1, 2, 3, 4 }).reshape(2, 2);
        using var b = tensor(new float[] { 5, 6, 7, 8 }).reshape(2, 2);
        using var c = matmul(a, b);
        CollectionAssert.AreEqual(new float[] { 19, 22, 43, 50 }, c.data<float>().ToArray());
    }
}
