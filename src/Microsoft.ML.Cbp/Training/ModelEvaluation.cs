using System;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Cbp.Training;

/// <summary>Loss and accuracy of a module on a batch source, in evaluation mode.</summary>
public static class ModelEvaluation
{
    /// <summary>Evaluates <paramref name="model"/> over one pass of <paramref name="data"/>.</summary>
    /// <param name="model">The network (switched to evaluation mode).</param>
    /// <param name="loss">Task loss of (output, labels), averaged over the batch.</param>
    /// <param name="data">Batches.</param>
    /// <returns>Mean loss per row, and the accuracy when labels are int64 class indices and outputs are [rows, classes].</returns>
    public static (double Loss, double? Accuracy) Evaluate(nn.Module<Tensor, Tensor> model, Func<Tensor, Tensor, Tensor> loss, IBatchSource data)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(loss);
        ArgumentNullException.ThrowIfNull(data);
        model.eval();
        double lossSum = 0;
        long rows = 0, correct = 0;
        bool classification = true;
        using var noGrad = no_grad();
        using var batches = data.Pass(0).GetEnumerator();
        while (true)
        {
            using var scope = NewDisposeScope();
            if (!batches.MoveNext())
            {
                break;
            }
            var (features, labels) = batches.Current;
            var output = model.forward(features);
            long n = features.shape[0];
            lossSum += loss(output, labels).ToDouble() * n;
            rows += n;
            if (labels.dtype == int64 && output.dim() == 2)
            {
                correct += output.argmax(1).eq(labels).sum().ToInt64();
            }
            else
            {
                classification = false;
            }
        }
        model.train();
        if (rows == 0)
        {
            throw new ArgumentException("The evaluation data produced no rows.", nameof(data));
        }
        return (lossSum / rows, classification ? (double)correct / rows : null);
    }
}
