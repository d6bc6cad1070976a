using System;
using System.Collections.Generic;
using Microsoft.ML.Data;

namespace Microsoft.ML.Cbp.Scoring;

/// <summary>
/// A row mapper (what prediction engines use) whose values throw <see cref="ObjectDisposedException"/> once its owner is
/// disposed, instead of reaching a disposed ONNX Runtime session in native code.
/// </summary>
internal sealed class DisposalGuardedMapper(IRowToRowMapper inner, Func<bool> isDisposed, object owner) : IRowToRowMapper
{
    public DataViewSchema InputSchema => inner.InputSchema;

    public DataViewSchema OutputSchema => inner.OutputSchema;

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns) => inner.GetDependencies(dependingColumns);

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
    {
        ObjectDisposedException.ThrowIf(isDisposed(), owner);
        return new Row(inner.GetRow(input, activeColumns), isDisposed, owner);
    }

    private sealed class Row(DataViewRow inner, Func<bool> isDisposed, object owner) : DataViewRow
    {
        public override DataViewSchema Schema => inner.Schema;

        public override long Position => inner.Position;

        public override long Batch => inner.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => inner.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => inner.IsColumnActive(column);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            var getter = inner.GetGetter<TValue>(column);
            return (ref TValue value) =>
            {
                ObjectDisposedException.ThrowIf(isDisposed(), owner);
                getter(ref value);
            };
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
