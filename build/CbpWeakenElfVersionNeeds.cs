// MSBuild inline task (compiled by RoslynCodeTaskFactory from build/TorchSharpNativeFix.targets).
// Marks chosen symbol-version requirements of an ELF64 little-endian shared library as weak
// (vna_flags |= VER_FLG_WEAK in .gnu.version_r) when the system libstdc++ does not provide them.
// See the comment in TorchSharpNativeFix.targets for why.
#nullable enable
using System;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class CbpWeakenElfVersionNeeds : Task
{
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlagWeak = 0x2;

    private static readonly string[] LibStdCxxCandidates =
    {
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
        "/usr/lib64/libstdc++.so.6",
        "/usr/lib/libstdc++.so.6",
    };

    [Required]
    public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();

    [Required]
    public string Versions { get; set; } = string.Empty;

    public override bool Execute()
    {
        string[] wanted = Versions.Split(new[] { ';', ',' }, StringSplitOptions.RemoveEmptyEntries)
            .Select(v => v.Trim()).ToArray();
        string? systemLib = LibStdCxxCandidates.FirstOrDefault(File.Exists);
        if (systemLib != null)
        {
            byte[] libBytes = File.ReadAllBytes(systemLib);
            wanted = wanted.Where(v => IndexOf(libBytes, Encoding.ASCII.GetBytes(v + "\0")) < 0).ToArray();
        }
        if (wanted.Length == 0)
        {
            Log.LogMessage(MessageImportance.Low, "CBP native fix: the system libstdc++ provides every required version; nothing to do.");
            return true;
        }

        foreach (ITaskItem item in Files)
        {
            string path = item.ItemSpec;
            try
            {
                Patch(path, wanted);
            }
            catch (Exception e) when (e is IOException || e is InvalidDataException || e is UnauthorizedAccessException)
            {
                Log.LogError("CBP native fix: could not patch '{0}': {1}", path, e.Message);
            }
        }
        return !Log.HasLoggedErrors;
    }

    private void Patch(string path, string[] wanted)
    {
        byte[] b = File.ReadAllBytes(path);
        if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F' || b[4] != 2 || b[5] != 1)
        {
            throw new InvalidDataException("not a 64-bit little-endian ELF file");
        }
        long shoff = (long)BitConverter.ToUInt64(b, 0x28);
        int shentsize = BitConverter.ToUInt16(b, 0x3A);
        int shnum = BitConverter.ToUInt16(b, 0x3C);
        int changed = 0;
        for (int i = 0; i < shnum; i++)
        {
            long sh = shoff + (long)i * shentsize;
            if (BitConverter.ToUInt32(b, (int)sh + 4) != ShtGnuVerneed)
            {
                continue;
            }
            long offset = (long)BitConverter.ToUInt64(b, (int)sh + 0x18);
            int link = (int)BitConverter.ToUInt32(b, (int)sh + 0x28);
            int count = (int)BitConverter.ToUInt32(b, (int)sh + 0x2C);
            long strtab = (long)BitConverter.ToUInt64(b, (int)(shoff + (long)link * shentsize) + 0x18);
            long vn = offset;
            for (int n = 0; n < count; n++)
            {
                int auxCount = BitConverter.ToUInt16(b, (int)vn + 2);
                long aux = vn + BitConverter.ToUInt32(b, (int)vn + 8);
                for (int a = 0; a < auxCount; a++)
                {
                    string name = ReadString(b, strtab + BitConverter.ToUInt32(b, (int)aux + 8));
                    ushort flags = BitConverter.ToUInt16(b, (int)aux + 4);
                    if (wanted.Contains(name) && (flags & VerFlagWeak) == 0)
                    {
                        BitConverter.GetBytes((ushort)(flags | VerFlagWeak)).CopyTo(b, (int)aux + 4);
                        changed++;
                    }
                    aux += BitConverter.ToUInt32(b, (int)aux + 12);
                }
                vn += BitConverter.ToUInt32(b, (int)vn + 12);
            }
        }
        if (changed == 0)
        {
            Log.LogMessage(MessageImportance.Low, "CBP native fix: '{0}' needs no change.", path);
            return;
        }

        // Write beside the file, then move over it: never a half-written library, and a hard link
        // into the NuGet cache (if the copy made one) is replaced rather than modified.
        DateTime stamp = File.GetLastWriteTimeUtc(path);
        string temp = path + ".cbp-tmp";
        File.WriteAllBytes(temp, b);
        File.SetLastWriteTimeUtc(temp, stamp);
        File.Delete(path);
        File.Move(temp, path);
        Log.LogMessage(MessageImportance.High, "CBP native fix: marked {0} version requirement(s) weak in '{1}' ({2}).", changed, path, string.Join(", ", wanted));
    }

    private static string ReadString(byte[] b, long start)
    {
        long end = start;
        while (b[end] != 0)
        {
            end++;
        }
        return Encoding.ASCII.GetString(b, (int)start, (int)(end - start));
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i <= haystack.Length - needle.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && haystack[i + j] == needle[j])
            {
                j++;
            }
            if (j == needle.Length)
            {
                return i;
            }
        }
        return -1;
    }
}
