using System;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Cbp.Tests;

/// <summary>A transformer disposed while its scored views, cursors or prediction engines live on: ObjectDisposedException, never a native crash.</summary>
[TestClass]
public sealed class DisposalTests
{
    private sealed class Row
    {
        [VectorType(4)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public bool Label { get; set; }
    }

    private sealed class Prediction
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    [TestMethod]
    public void ViewsCursorsAndPredictionEnginesOfADisposedTransformerThrowObjectDisposed()
    {
        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 2000).Select(i => new Row { Features = new[] { i % 7 / 7f, i % 3 / 3f, i % 5 / 5f, 0.5f }, Label = i % 7 > 3 }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var model = ml.Transforms.CbpQuantize(new CbpQuantizeOptions { Architecture = CbpArchitecture.Mlp(new[] { 8, 8 }), PretrainEpochs = 1, Epochs = 1, ScoringBatchSize = 64 }).Fit(data);
        var scored = model.Transform(data);
        var engine = ml.Model.CreatePredictionEngine<Row, Prediction>(model);
        Assert.AreEqual(2, engine.Predict(rows[0]).Score.Length, "the engine works before Dispose");
        using var cursor = scored.GetRowCursor(scored.Schema);
        var score = cursor.GetGetter<VBuffer<float>>(scored.Schema["Score"]);
        VBuffer<float> value = default;
        Assert.IsTrue(cursor.MoveNext());
        score(ref value);
        Assert.IsTrue(value.DenseValues().All(float.IsFinite));

        model.Dispose();
        // The cursor reaches the next batch: it must not run the released session.
        Assert.ThrowsExactly<ObjectDisposedException>(() =>
        {
            while (cursor.MoveNext())
            {
                score(ref value);
            }
        });
        Assert.ThrowsExactly<ObjectDisposedException>(() => engine.Predict(rows[1]));
        Assert.ThrowsExactly<ObjectDisposedException>(() => model.Transform(data));
        Assert.ThrowsExactly<ObjectDisposedException>(() => ml.Model.CreatePredictionEngine<Row, Prediction>(model));
    }

    /// <summary>
    /// Dispose while other threads are inside Predict and inside batched cursors: each call either completes with a finite
    /// score or throws ObjectDisposedException (Dispose waits for the runs in flight); a native crash would end the test host.
    /// </summary>
    [TestMethod]
    public void DisposeDuringPredictionsOnOtherThreadsWaitsForThemOrRefusesThem()
    {
        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 2000).Select(i => new Row { Features = new[] { i % 7 / 7f, i % 3 / 3f, i % 5 / 5f, 0.5f }, Label = i % 7 > 3 }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        for (int round = 0; round < 3; round++)
        {
            var model = ml.Transforms.CbpQuantize(new CbpQuantizeOptions { Architecture = CbpArchitecture.Mlp(new[] { 8, 8 }), PretrainEpochs = 1, Epochs = 1, ScoringBatchSize = 16 }).Fit(data);
            var engine = ml.Model.CreatePredictionEngine<Row, Prediction>(model);
            var scored = model.Transform(data);
            using var started = new System.Threading.CountdownEvent(2);
            long completed = 0;
            var predicting = System.Threading.Tasks.Task.Run(() =>
            {
                started.Signal();
                for (int i = 0; ; i++)
                {
                    var score = engine.Predict(rows[i % rows.Count]).Score;
                    Assert.IsTrue(score.All(float.IsFinite), "a completed prediction is a real one");
                    System.Threading.Interlocked.Increment(ref completed);
                }
            });
            var scanning = System.Threading.Tasks.Task.Run(() =>
            {
                started.Signal();
                while (true)
                {
                    foreach (var score in scored.GetColumn<float[]>("Score"))
                    {
                        Assert.IsTrue(score.All(float.IsFinite), "a completed batch is a real one");
                        System.Threading.Interlocked.Increment(ref completed);
                    }
                }
            });
            started.Wait();
            while (System.Threading.Interlocked.Read(ref completed) < 200)
            {
                System.Threading.Thread.Sleep(1);
            }
            model.Dispose();
            foreach (var task in new[] { predicting, scanning })
            {
                var e = Assert.ThrowsExactly<AggregateException>(() => task.Wait(TimeSpan.FromSeconds(30)));
                Assert.IsInstanceOfType<ObjectDisposedException>(e.InnerException, $"round {round}: {e.InnerException}");
            }
        }
    }
}
