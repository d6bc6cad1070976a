using System;
using System.IO;
using System.Runtime.InteropServices;

namespace Microsoft.ML.Cbp.Training;

/// <summary>
/// The MPI job this process belongs to, when an MPI launcher started it with more than one rank (<c>mpiexec -n N</c>):
/// rank, size and the few collectives data-parallel training needs, bound by hand to an MPI library with MPICH's ABI
/// (MPICH, Intel MPI, MVAPICH: integer handles, <c>libmpich.so.12</c> or <c>libmpi.so.12</c>).
/// </summary>
/// <remarks>
/// <para>Open MPI has another ABI (its handles are pointers to library globals) and is refused with a message naming
/// MPICH. Every MPI call's error ends the job (MPI's default handler, <c>MPI_ERRORS_ARE_FATAL</c>), so a failing rank
/// cannot leave the others waiting in a collective forever.</para>
/// <para>MPICH's handles (mpi.h of MPICH 4): <c>MPI_COMM_WORLD</c> 0x44000000, <c>MPI_BYTE</c> 0x4c00010d,
/// <c>MPI_FLOAT</c> 0x4c00040a, <c>MPI_DOUBLE</c> 0x4c00080b, <c>MPI_SUM</c> 0x58000003, <c>MPI_MAX</c> 0x58000001,
/// <c>MPI_IN_PLACE</c> (void*)-1, <c>MPI_THREAD_FUNNELED</c> 1.</para>
/// </remarks>
internal sealed class MpiWorld
{
    private const int CommWorld = 0x44000000, MpiByte = 0x4c00010d, MpiFloat = 0x4c00040a, MpiDouble = 0x4c00080b, MpiSum = 0x58000003, MpiMax = 0x58000001,
        MpiMin = 0x58000002;
    private const int ThreadSerialized = 2;
    private static readonly IntPtr InPlace = new(-1);

    /// <summary>Library names tried, in order: MPICH's, then the MPICH-ABI name Intel MPI and MVAPICH use.</summary>
    private static readonly string[] LibraryNames = { "libmpich.so.12", "libmpi.so.12" };

    private static readonly object Gate = new();
    private static MpiWorld? _current;
    private static bool _probed;

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int IntOut(out int value);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int InitThread(IntPtr argc, IntPtr argv, int required, out int provided);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int CommInt(int comm, out int value);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int AllReduceFunction(IntPtr send, IntPtr receive, int count, int type, int op, int comm);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int AllReduceInPlaceFunction(IntPtr send, ref float receive, int count, int type, int op, int comm);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int BroadcastFunction(ref byte buffer, int count, int type, int root, int comm);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int AbortJob(int comm, int code);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int NoArguments();

    private readonly AllReduceFunction _allReduce;
    private readonly AllReduceInPlaceFunction _allReduceSpan;
    private readonly BroadcastFunction _broadcast;
    private readonly AbortJob _abort;

    private MpiWorld(IntPtr library, string libraryName)
    {
        T Bind<T>(string name) where T : Delegate => Marshal.GetDelegateForFunctionPointer<T>(NativeLibrary.GetExport(library, name));
        LibraryName = libraryName;
        Check(Bind<IntOut>("MPI_Initialized")(out int initialized), "MPI_Initialized");
        if (initialized == 0)
        {
            // Collectives come from whichever thread runs a Fit, one at a time (Gate-free: Fit is not re-entrant per process).
            Check(Bind<InitThread>("MPI_Init_thread")(IntPtr.Zero, IntPtr.Zero, ThreadSerialized, out int provided), "MPI_Init_thread");
            if (provided < ThreadSerialized)
            {
                throw new NotSupportedException($"{libraryName} provides MPI thread level {provided}; Microsoft.ML.Cbp needs MPI_THREAD_SERIALIZED (2).");
            }
            var finalized = Bind<IntOut>("MPI_Finalized");
            var finalize = Bind<NoArguments>("MPI_Finalize");
            // MPI must be finalized before the process exits, or the launcher reports the rank as failed.
            AppDomain.CurrentDomain.ProcessExit += (_, _) =>
            {
                finalized(out int done);
                if (done == 0)
                {
                    finalize();
                }
            };
        }
        Check(Bind<CommInt>("MPI_Comm_rank")(CommWorld, out int rank), "MPI_Comm_rank");
        Check(Bind<CommInt>("MPI_Comm_size")(CommWorld, out int size), "MPI_Comm_size");
        Rank = rank;
        Size = size;
        _allReduce = Bind<AllReduceFunction>("MPI_Allreduce");
        _allReduceSpan = Bind<AllReduceInPlaceFunction>("MPI_Allreduce");
        _broadcast = Bind<BroadcastFunction>("MPI_Bcast");
        _abort = Bind<AbortJob>("MPI_Abort");
    }

    /// <summary>This process's rank, 0 to <see cref="Size"/> - 1.</summary>
    public int Rank { get; }

    /// <summary>The number of ranks in the job.</summary>
    public int Size { get; }

    /// <summary>The MPI library that was loaded.</summary>
    public string LibraryName { get; }

    /// <summary>
    /// The job this process belongs to, or null when no MPI launcher started it with more than one rank (the environment
    /// has no <c>PMI_SIZE</c> above 1): a single process then trains alone, exactly as without MPI. MPI is initialized on
    /// the first call.
    /// </summary>
    /// <exception cref="NotSupportedException">The process was started by Open MPI's launcher, or no MPICH-ABI library can be loaded.</exception>
    public static MpiWorld? Current
    {
        get
        {
            lock (Gate)
            {
                if (!_probed)
                {
                    _current = Probe();
                    _probed = true;
                }
                return _current;
            }
        }
    }

    /// <summary>Sums <paramref name="values"/> element-wise across ranks, in place; every rank gets the sums.</summary>
    /// <param name="values">This rank's values; on return, the sums.</param>
    public void SumInPlace(float[] values) => Collective(values, values.Length, MpiFloat, MpiSum);

    /// <summary>Sums <paramref name="values"/> element-wise across ranks, in place, wherever they live (a tensor's own memory: no copy).</summary>
    /// <param name="values">This rank's values; on return, the sums.</param>
    public void SumInPlace(Span<float> values)
    {
        if (!values.IsEmpty)
        {
            Check(_allReduceSpan(InPlace, ref MemoryMarshal.GetReference(values), values.Length, MpiFloat, MpiSum, CommWorld), "MPI_Allreduce");
        }
    }

    /// <summary>Sums <paramref name="values"/> element-wise across ranks, in place; every rank gets the sums.</summary>
    /// <param name="values">This rank's values; on return, the sums.</param>
    public void SumInPlace(double[] values) => Collective(values, values.Length, MpiDouble, MpiSum);

    /// <summary>The element-wise minimum of <paramref name="values"/> across ranks, in place.</summary>
    /// <param name="values">This rank's values; on return, the minima.</param>
    public void MinInPlace(double[] values) => Collective(values, values.Length, MpiDouble, MpiMin);

    /// <summary>The element-wise maximum of <paramref name="values"/> across ranks, in place.</summary>
    /// <param name="values">This rank's values; on return, the maxima.</param>
    public void MaxInPlace(double[] values) => Collective(values, values.Length, MpiDouble, MpiMax);

    /// <summary>Copies rank <paramref name="root"/>'s <paramref name="buffer"/> into every rank's, wherever it lives (an array, or a tensor's own memory; all ranks pass buffers of one length).</summary>
    /// <param name="buffer">The root's bytes; on the other ranks, overwritten with them.</param>
    /// <param name="root">The rank whose bytes are sent.</param>
    public void Broadcast(Span<byte> buffer, int root)
    {
        if (!buffer.IsEmpty)
        {
            // The marshaller pins the span's memory for the call (a ref parameter), as for the in-place all-reduce.
            Check(_broadcast(ref MemoryMarshal.GetReference(buffer), buffer.Length, MpiByte, root, CommWorld), "MPI_Bcast");
        }
    }

    /// <summary>Ends every rank of the job with <paramref name="code"/> (a rank that cannot go on must not leave the others waiting).</summary>
    /// <param name="code">The exit code.</param>
    public void Abort(int code) => _abort(CommWorld, code);

    private void Collective(Array values, int count, int type, int op)
    {
        ArgumentNullException.ThrowIfNull(values);
        var handle = GCHandle.Alloc(values, GCHandleType.Pinned);
        try
        {
            Check(_allReduce(InPlace, handle.AddrOfPinnedObject(), count, type, op, CommWorld), "MPI_Allreduce");
        }
        finally
        {
            handle.Free();
        }
    }

    private static MpiWorld? Probe()
    {
        if (int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE"), out int openMpiSize) && openMpiSize > 1)
        {
            throw new NotSupportedException(
                $"This process was started by Open MPI's mpirun with {openMpiSize} ranks; Microsoft.ML.Cbp binds MPICH's ABI (MPICH, Intel MPI, MVAPICH). " +
                "Install MPICH (Debian: apt-get install mpich) and start the job with its mpiexec.");
        }
        if (!int.TryParse(Environment.GetEnvironmentVariable("PMI_SIZE"), out int size) || size <= 1)
        {
            return null;
        }
        foreach (string name in LibraryNames)
        {
            if (NativeLibrary.TryLoad(name, out var library))
            {
                return new MpiWorld(library, name);
            }
        }
        throw new NotSupportedException(
            $"This process was started by an MPI launcher with {size} ranks (PMI_SIZE), but no MPICH-ABI library ({string.Join(", ", LibraryNames)}) can be loaded; " +
            "install MPICH (Debian: apt-get install mpich) or set LD_LIBRARY_PATH to the one the launcher belongs to.");
    }

    private static void Check(int code, string call)
    {
        if (code != 0)
        {
            throw new IOException($"{call} failed with MPI error code {code}.");
        }
    }
}
