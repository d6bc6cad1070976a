using System;
using System.Collections.Generic;
using System.Linq;
using Mono.Cecil;
using Mono.Cecil.Cil;

namespace Microsoft.ML.Cbp.Tests.Architecture;

/// <summary>A type that a type of the library refers to: its assembly and its full name (outermost declaring type for nested types).</summary>
/// <param name="Assembly">Name of the assembly that defines it.</param>
/// <param name="FullName">Namespace and name of the (outermost) type, as in C# metadata (generic arity as `n).</param>
internal sealed record TypeDependency(string Assembly, string FullName);

/// <summary>
/// Reads, from a compiled assembly's metadata and IL, every type each of its types depends on: base types, interfaces,
/// attributes, fields, properties, events, method signatures, generic constraints and arguments, local variables, catch
/// clauses and every type, method and field an instruction names. Nested and compiler-generated types (closures,
/// iterators, lambdas) count as part of their outermost declaring type.
/// </summary>
internal static class AssemblyDependencies
{
    /// <summary>Dependencies of each top-level type of <paramref name="assemblyPath"/>, by its full name.</summary>
    /// <param name="assemblyPath">The compiled assembly.</param>
    public static Dictionary<string, HashSet<TypeDependency>> Read(string assemblyPath)
    {
        using var module = ModuleDefinition.ReadModule(assemblyPath);
        var result = new Dictionary<string, HashSet<TypeDependency>>(StringComparer.Ordinal);
        foreach (var type in module.Types.Where(t => t.Name != "<Module>" && !t.Name.StartsWith("<", StringComparison.Ordinal) && !t.Name.StartsWith("Microsoft.CodeAnalysis", StringComparison.Ordinal)))
        {
            var collector = new Collector(module);
            collector.Type(type);
            collector.Found.RemoveWhere(d => d.Assembly == module.Assembly.Name.Name && d.FullName == type.FullName);
            result[type.FullName] = collector.Found;
        }
        return result;
    }

    private sealed class Collector(ModuleDefinition module)
    {
        private readonly HashSet<TypeReference> _seen = new();

        public HashSet<TypeDependency> Found { get; } = new();

        public void Type(TypeDefinition type)
        {
            Reference(type.BaseType);
            foreach (var i in type.Interfaces)
            {
                Reference(i.InterfaceType);
            }
            Attributes(type);
            GenericParameters(type);
            foreach (var field in type.Fields)
            {
                Reference(field.FieldType);
                Attributes(field);
            }
            foreach (var property in type.Properties)
            {
                Reference(property.PropertyType);
                Attributes(property);
            }
            foreach (var e in type.Events)
            {
                Reference(e.EventType);
            }
            foreach (var method in type.Methods)
            {
                Method(method);
            }
            foreach (var nested in type.NestedTypes)
            {
                Type(nested);
            }
        }

        private void Method(MethodDefinition method)
        {
            Attributes(method);
            GenericParameters(method);
            Reference(method.ReturnType);
            foreach (var parameter in method.Parameters)
            {
                Reference(parameter.ParameterType);
                Attributes(parameter);
            }
            if (!method.HasBody)
            {
                return;
            }
            foreach (var variable in method.Body.Variables)
            {
                Reference(variable.VariableType);
            }
            foreach (var handler in method.Body.ExceptionHandlers)
            {
                Reference(handler.CatchType);
            }
            foreach (var instruction in method.Body.Instructions)
            {
                switch (instruction.Operand)
                {
                    case TypeReference t:
                        Reference(t);
                        break;
                    case MethodReference m:
                        MethodReference(m);
                        break;
                    case FieldReference f:
                        Reference(f.DeclaringType);
                        Reference(f.FieldType);
                        break;
                    case CallSite site:
                        Reference(site.ReturnType);
                        foreach (var p in site.Parameters)
                        {
                            Reference(p.ParameterType);
                        }
                        break;
                }
            }
        }

        private void MethodReference(MethodReference method)
        {
            Reference(method.DeclaringType);
            Reference(method.ReturnType);
            foreach (var parameter in method.Parameters)
            {
                Reference(parameter.ParameterType);
            }
            if (method is GenericInstanceMethod generic)
            {
                foreach (var argument in generic.GenericArguments)
                {
                    Reference(argument);
                }
            }
        }

        private void Attributes(ICustomAttributeProvider provider)
        {
            foreach (var attribute in provider.CustomAttributes)
            {
                Reference(attribute.AttributeType);
                foreach (var argument in attribute.ConstructorArguments)
                {
                    Reference(argument.Type);
                    if (argument.Value is TypeReference typeArgument)
                    {
                        Reference(typeArgument);
                    }
                }
            }
        }

        private void GenericParameters(IGenericParameterProvider provider)
        {
            foreach (var parameter in provider.GenericParameters)
            {
                foreach (var constraint in parameter.Constraints)
                {
                    Reference(constraint.ConstraintType);
                }
            }
        }

        private void Reference(TypeReference? type)
        {
            if (type is null || type is GenericParameter || !_seen.Add(type))
            {
                return;
            }
            switch (type)
            {
                case GenericInstanceType generic:
                    Reference(generic.ElementType);
                    foreach (var argument in generic.GenericArguments)
                    {
                        Reference(argument);
                    }
                    return;
                case TypeSpecification specification:
                    // Arrays, by-reference, pointers, modifiers: the element type is the dependency.
                    Reference(specification.ElementType);
                    return;
            }
            var outermost = type;
            while (outermost.DeclaringType is not null)
            {
                outermost = outermost.DeclaringType;
            }
            string assembly = outermost.Scope switch
            {
                AssemblyNameReference reference => reference.Name,
                ModuleDefinition m => m.Assembly.Name.Name,
                _ => module.Assembly.Name.Name,
            };
            Found.Add(new TypeDependency(assembly, outermost.FullName));
        }
    }
}
