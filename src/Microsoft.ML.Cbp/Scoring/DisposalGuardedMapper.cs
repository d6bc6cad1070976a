using System;
using System.Collections.Generic;
using Microsoft.ML.Data;

namespace Microsoft.ML.Cbp.Scoring;

/// <summary>
/// A row mapper (what prediction engines use) whose values throw <see cref="ObjectDisposedException"/> once its owner is
/// disposed, instead of reaching a disposed ONNX Runtime session in native code: each value is read inside a use of the
/// owner's <see cref="ScoringLifetime"/>, so a Dispose waits for the values being computed.
/// </summary>
internal sealed class DisposalGuardedMapper(IRowToRowMapper inner, ScoringLifetime lifetime) : IRowToRowMapper
{
    public DataViewSchema InputSchema => inner.InputSchema;

    public DataViewSchema OutputSchema => inner.OutputSchema;

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns) => inner.GetDependencies(dependingColumns);

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
    {
        lifetime.Enter();
        try
        {
            return new Row(inner.GetRow(input, activeColumns), lifetime);
        }
        finally
        {
            lifetime.Exit();
        }
    }

    private sealed class Row(DataViewRow inner, ScoringLifetime lifetime) : DataViewRow
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
                lifetime.Enter();
                try
                {
                    getter(ref value);
                }
                finally
                {
                    lifetime.Exit();
                }
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
