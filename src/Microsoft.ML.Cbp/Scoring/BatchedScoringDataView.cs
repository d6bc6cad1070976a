using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.ML.Data;

namespace Microsoft.ML.Cbp.Scoring;

/// <summary>
/// The output of <c>CbpQuantizeTransformer.Transform</c>: the input columns plus the scoring columns, computed
/// lazily with one ONNX Runtime <c>Run</c> per batch of rows instead of one per row.
/// </summary>
/// <remarks>
/// Its schema is the schema of the equivalent ML.NET chain (OnnxTransformer, then MapValueToKey for multiclass), so
/// a model scores the same columns before and after it is saved and reloaded. A cursor reads ahead with a second
/// cursor over the feature column, scores a batch, and serves the rows of the batch as the main cursor reaches them.
/// </remarks>
internal sealed class BatchedScoringDataView : IDataView
{
    private readonly IDataView _input;
    private readonly OnnxScoringSession _session;
    private readonly DataViewSchema.Column _feature;
    private readonly int _batchSize;
    private readonly Array? _labelValues;
    private readonly ScoringTask _task;
    private readonly Dictionary<int, ScoringOutput.Role> _outputs = new();

    public BatchedScoringDataView(IDataView input, DataViewSchema schema, OnnxScoringSession session, string featureColumn, ScoringTask task, Array? labelValues, int batchSize)
    {
        _input = input;
        Schema = schema;
        _session = session;
        _feature = input.Schema[featureColumn];
        _task = task;
        _labelValues = labelValues;
        _batchSize = batchSize;
        for (int i = input.Schema.Count; i < schema.Count; i++)
        {
            _outputs[i] = ScoringOutput.RoleOf(schema[i], task);
        }
    }

    public bool CanShuffle => false;

    public DataViewSchema Schema { get; }

    public long? GetRowCount() => _input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var needed = columnsNeeded.Select(c => c.Index).ToHashSet();
        var inputColumns = needed.Where(i => i < _input.Schema.Count).Select(i => _input.Schema[i]).ToList();
        bool scoring = needed.Any(i => i >= _input.Schema.Count);
        return new Cursor(this, _input.GetRowCursor(inputColumns), scoring ? _input.GetRowCursor(new[] { _feature }) : null, needed);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        new[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly BatchedScoringDataView _parent;
        private readonly DataViewRowCursor _main;
        private readonly DataViewRowCursor? _features;
        private readonly ValueGetter<VBuffer<float>>? _getFeatures;
        private readonly HashSet<int> _active;
        private readonly int _width;
        private readonly int _rowWidth;
        private VBuffer<float> _buffer;
        private float[]? _rows;
        private Task<(float[] Scores, long[] Classes, int Count)>? _next;
        private float[] _scores = Array.Empty<float>();
        private long[] _classes = Array.Empty<long>();
        private long _position = -1;
        private long _blockStart;
        private long _blockEnd;

        public Cursor(BatchedScoringDataView parent, DataViewRowCursor main, DataViewRowCursor? features, HashSet<int> active)
        {
            _parent = parent;
            _main = main;
            _features = features;
            _active = active;
            _rowWidth = (int)parent._session.RowWidth;
            _width = ((VectorDataViewType)parent.Schema[ScoringOutput.Score].Type).Size;
            _getFeatures = features?.GetGetter<VBuffer<float>>(parent._feature);
        }

        public override DataViewSchema Schema => _parent.Schema;

        public override long Position => _position;

        public override long Batch => 0;

        public override ValueGetter<DataViewRowId> GetIdGetter() => _main.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => _active.Contains(column.Index);

        public override bool MoveNext()
        {
            if (!_main.MoveNext())
            {
                return false;
            }
            _position++;
            if (_features != null && _position >= _blockEnd)
            {
                ScoreNextBatch();
            }
            return true;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < _parent._input.Schema.Count)
            {
                return _main.GetGetter<TValue>(_parent._input.Schema[column.Index]);
            }
            if (!_active.Contains(column.Index))
            {
                throw new InvalidOperationException($"Column '{column.Name}' was not requested from this cursor.");
            }
            Delegate getter = _parent._outputs[column.Index] switch
            {
                ScoringOutput.Role.Score => (ValueGetter<VBuffer<float>>)GetScore,
                ScoringOutput.Role.PredictedKey => (ValueGetter<VBuffer<uint>>)GetKey,
                ScoringOutput.Role.PredictedBoolean => (ValueGetter<VBuffer<bool>>)GetBoolean,
                _ => (Delegate)typeof(Cursor).GetMethod(nameof(MakeValueGetter), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!
                    .MakeGenericMethod(_parent._labelValues!.GetType().GetElementType()!).Invoke(this, null)!,
            };
            return getter as ValueGetter<TValue> ?? throw new InvalidOperationException(
                $"Column '{column.Name}' is {column.Type}; it cannot be read as {typeof(TValue).Name}.");
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                // Let a background batch finish before its cursor goes away; its result (or error) is no longer wanted.
                try
                {
                    _next?.Wait();
                }
                catch (AggregateException)
                {
                }
                _main.Dispose();
                _features?.Dispose();
            }
            base.Dispose(disposing);
        }

        private int Row => checked((int)(_position - _blockStart));

        private void GetScore(ref VBuffer<float> value)
        {
            var editor = VBufferEditor.Create(ref value, _width);
            _scores.AsSpan(Row * _width, _width).CopyTo(editor.Values);
            value = editor.Commit();
        }

        private void GetKey(ref VBuffer<uint> value)
        {
            // A row with non-finite features has class -1: the missing key, 0.
            var editor = VBufferEditor.Create(ref value, 1);
            editor.Values[0] = (uint)(_classes[Row] + 1);
            value = editor.Commit();
        }

        private void GetBoolean(ref VBuffer<bool> value)
        {
            var editor = VBufferEditor.Create(ref value, 1);
            editor.Values[0] = _classes[Row] == 1;
            value = editor.Commit();
        }

        private ValueGetter<VBuffer<T>> MakeValueGetter<T>()
        {
            var values = (T[])_parent._labelValues!;
            T missing = typeof(T) == typeof(float) ? (T)(object)float.NaN : typeof(T) == typeof(double) ? (T)(object)double.NaN : default!;
            return (ref VBuffer<T> value) =>
            {
                var editor = VBufferEditor.Create(ref value, 1);
                editor.Values[0] = _classes[Row] < 0 ? missing : values[_classes[Row]];
                value = editor.Commit();
            };
        }

        private void ScoreNextBatch()
        {
            // The batch after this one is read and scored in the background while the caller consumes this one.
            var (scores, classes, count) = (_next ?? Task.FromResult(ReadAndScore())).GetAwaiter().GetResult();
            _next = null;
            if (count == 0)
            {
                throw new InvalidOperationException("The input data returned fewer rows to the feature cursor than to the row cursor; batched scoring needs a data view whose cursors agree.");
            }
            _scores = scores;
            _classes = classes;
            _blockStart = _position;
            _blockEnd = _position + count;
            if (count == _parent._batchSize)
            {
                _next = Task.Run(ReadAndScore);
            }
        }

        private (float[] Scores, long[] Classes, int Count) ReadAndScore()
        {
            // One input buffer per cursor (a batch of 784-float rows is a large-object-heap array: allocating one per
            // batch costs more than the copy); the last, shorter batch gets its own exact-size buffer.
            var rows = _rows ??= new float[_parent._batchSize * _rowWidth];
            int count = 0;
            List<int>? nonFinite = null;
            while (count < _parent._batchSize && _features!.MoveNext())
            {
                _getFeatures!(ref _buffer);
                var row = rows.AsSpan(count * _rowWidth, _rowWidth);
                _buffer.CopyTo(row);
                if (!IsFinite(row))
                {
                    (nonFinite ??= new List<int>()).Add(count);
                }
                count++;
            }
            if (count == 0)
            {
                return (Array.Empty<float>(), Array.Empty<long>(), 0);
            }
            if (count < _parent._batchSize)
            {
                rows = rows.AsSpan(0, count * _rowWidth).ToArray();
            }
            var outputs = _parent._session.ScoreBatch(rows, count);
            var classes = _parent._task == ScoringTask.Regression ? Array.Empty<long>() : (long[])outputs[ScoringGraph.ClassOutput];
            var scores = (float[])outputs[ScoringOutput.Score];
            // A row with a NaN or infinite feature gets no prediction: Score NaN, PredictedLabel missing (or false), as the
            // per-row graph of a saved model gives it.
            foreach (int row in nonFinite ?? Enumerable.Empty<int>())
            {
                scores.AsSpan(row * _width, _width).Fill(float.NaN);
                if (classes.Length > 0)
                {
                    classes[row] = -1;
                }
            }
            return (scores, classes, count);
        }

        private static bool IsFinite(ReadOnlySpan<float> row)
        {
            foreach (float v in row)
            {
                if (!float.IsFinite(v))
                {
                    return false;
                }
            }
            return true;
        }
    }
}
