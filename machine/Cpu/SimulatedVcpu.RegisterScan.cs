using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.InteropServices;
using System.Diagnostics.SymbolStore;

namespace ActorStep.Machine.Cpu;

public sealed partial class SimulatedVcpu
{
    private static partial class BlockCompiler
    {
        /// <summary>
        /// The IL sink of a block's first pass (<see cref="Compile"/>), which only learns the registers the block reads and writes
        /// (the emitter records them as it goes): every emit is dropped, a label or local is a handle and nothing more. A
        /// throwaway <see cref="DynamicMethod"/>'s generator did this before at the price of a second IL buffer, its tokens and
        /// fix-ups (a third of the compile thread's allocations on the Linux boot, ~23 MB).
        /// </summary>
        private sealed class RegisterScan : ILGenerator
        {
            private int _labels;

            public override int ILOffset => 0;

            public override Label DefineLabel() => CreateLabel(_labels++);
            public override LocalBuilder DeclareLocal(Type localType, bool pinned) => new ScanLocal(localType);

            public override void Emit(OpCode opcode) { }
            public override void Emit(OpCode opcode, byte arg) { }
            public override void Emit(OpCode opcode, short arg) { }
            public override void Emit(OpCode opcode, long arg) { }
            public override void Emit(OpCode opcode, float arg) { }
            public override void Emit(OpCode opcode, double arg) { }
            public override void Emit(OpCode opcode, int arg) { }
            public override void Emit(OpCode opcode, MethodInfo meth) { }
            public override void Emit(OpCode opcode, SignatureHelper signature) { }
            public override void Emit(OpCode opcode, ConstructorInfo con) { }
            public override void Emit(OpCode opcode, Type cls) { }
            public override void Emit(OpCode opcode, Label label) { }
            public override void Emit(OpCode opcode, Label[] labels) { }
            public override void Emit(OpCode opcode, FieldInfo field) { }
            public override void Emit(OpCode opcode, string str) { }
            public override void Emit(OpCode opcode, LocalBuilder local) { }
            public override void EmitCall(OpCode opcode, MethodInfo methodInfo, Type[]? optionalParameterTypes) { }
            public override void EmitCalli(OpCode opcode, CallingConventions callingConvention, Type? returnType, Type[]? parameterTypes,
                Type[]? optionalParameterTypes) { }
            public override void EmitCalli(OpCode opcode, CallingConvention unmanagedCallConv, Type? returnType, Type[]? parameterTypes) { }
            public override void MarkLabel(Label loc) { }

            // A block has no exception handling, scopes or namespaces.
            public override Label BeginExceptionBlock() => throw new NotSupportedException();
            public override void EndExceptionBlock() => throw new NotSupportedException();
            public override void BeginExceptFilterBlock() => throw new NotSupportedException();
            public override void BeginCatchBlock(Type? exceptionType) => throw new NotSupportedException();
            public override void BeginFaultBlock() => throw new NotSupportedException();
            public override void BeginFinallyBlock() => throw new NotSupportedException();
            public override void UsingNamespace(string usingNamespace) => throw new NotSupportedException();
            public override void BeginScope() => throw new NotSupportedException();
            public override void EndScope() => throw new NotSupportedException();
            protected override void MarkSequencePointCore(ISymbolDocumentWriter document, int startLine, int startColumn, int endLine,
                int endColumn) => throw new NotSupportedException();

            private sealed class ScanLocal(Type type) : LocalBuilder
            {
                public override Type LocalType => type;
                public override int LocalIndex => throw new NotSupportedException();
                public override bool IsPinned => false;
            }
        }
    }
}
