// judge-javac: compile one Java source file of any name into a runnable jar.
//
//   java -cp /opt/judge/java JudgeJavac SOURCE JAR [javac options...]
//
// javac refuses a file whose name does not end in .java, or whose public class is not named
// after the file; clients name files freely (Main.java, main, file0.code). This compiles the
// source as the JDK's source launcher does (any file name, any public class name), writes the
// classes to JAR and names as its Main-Class the class that declares a static main method
// (the public one when several do; else the first top-level class). Diagnostics go to stderr
// in javac's format; the exit status is 1 when compilation fails, 2 for a usage error.

import com.sun.source.tree.ClassTree;
import com.sun.source.tree.CompilationUnitTree;
import com.sun.source.tree.MethodTree;
import com.sun.source.tree.Tree;
import com.sun.source.util.JavacTask;
import com.sun.source.util.TaskEvent;
import com.sun.source.util.TaskListener;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.jar.Attributes;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import javax.lang.model.element.Modifier;
import javax.tools.FileObject;
import javax.tools.ForwardingJavaFileManager;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileManager;
import javax.tools.JavaFileObject;
import javax.tools.SimpleJavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;

public class JudgeJavac {
    /** The source under its own name; any name is compatible with any class (as the launcher). */
    static final class Source extends SimpleJavaFileObject {
        private final String text;

        Source(Path path, String text) {
            super(path.toAbsolutePath().toUri(), Kind.SOURCE);
            this.text = text;
        }

        @Override
        public boolean isNameCompatible(String simpleName, Kind kind) {
            return true;
        }

        @Override
        public CharSequence getCharContent(boolean ignoreEncodingErrors) {
            return text;
        }
    }

    /** A compiled class kept in memory until the jar is written. */
    static final class ClassBytes extends SimpleJavaFileObject {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();

        ClassBytes(String name) {
            super(URI.create("mem:///" + name.replace('.', '/') + ".class"), Kind.CLASS);
        }

        @Override
        public OutputStream openOutputStream() {
            return bytes;
        }
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 2) {
            System.err.println("usage: JudgeJavac SOURCE JAR [javac options...]");
            System.exit(2);
        }
        Path source = Path.of(args[0]);
        Path jar = Path.of(args[1]);
        List<String> options = new ArrayList<>(List.of("-encoding", "UTF-8"));
        options.addAll(Arrays.asList(args).subList(2, args.length));
        String text = new String(Files.readAllBytes(source), StandardCharsets.UTF_8);

        JavaCompiler compiler = ToolProvider.getSystemJavaCompiler();
        StandardJavaFileManager standard = compiler.getStandardFileManager(null, null, null);
        Map<String, ClassBytes> classes = new LinkedHashMap<>();
        JavaFileManager manager = new ForwardingJavaFileManager<>(standard) {
            @Override
            public JavaFileObject getJavaFileForOutput(
                    Location location, String name, JavaFileObject.Kind kind, FileObject sibling) {
                ClassBytes out = new ClassBytes(name);
                classes.put(name, out);
                return out;
            }
        };
        JavacTask task = (JavacTask) compiler.getTask(
                null, manager, null, options, null, List.of(new Source(source, text)));
        // Read right after parsing: later phases rewrite the trees.
        List<String> mains = new ArrayList<>();
        task.addTaskListener(new TaskListener() {
            @Override
            public void finished(TaskEvent e) {
                if (e.getKind() == TaskEvent.Kind.PARSE) {
                    mains.add(mainClass(e.getCompilationUnit()));
                }
            }
        });
        // call() prints javac's own diagnostics to stderr and says whether it succeeded.
        if (!task.call()) {
            System.exit(1);
        }
        String mainClass = mains.isEmpty() ? null : mains.get(0);
        if (mainClass == null || classes.isEmpty()) {
            System.err.println("error: no class to run in " + source);
            System.exit(1);
        }
        Manifest manifest = new Manifest();
        manifest.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
        manifest.getMainAttributes().put(Attributes.Name.MAIN_CLASS, mainClass);
        try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar), manifest)) {
            for (Map.Entry<String, ClassBytes> c : classes.entrySet()) {
                out.putNextEntry(new JarEntry(c.getKey().replace('.', '/') + ".class"));
                c.getValue().bytes.writeTo(out);
                out.closeEntry();
            }
        }
    }

    /** The fully qualified name of the class to run: see the header. */
    static String mainClass(CompilationUnitTree unit) {
        String pkg = unit.getPackageName() == null ? "" : unit.getPackageName() + ".";
        String first = null;
        String withMain = null;
        for (Tree decl : unit.getTypeDecls()) {
            if (!(decl instanceof ClassTree)) {
                continue;
            }
            ClassTree cls = (ClassTree) decl;
            String name = pkg + cls.getSimpleName();
            if (first == null) {
                first = name;
            }
            if (!hasMain(cls)) {
                continue;
            }
            if (cls.getModifiers().getFlags().contains(Modifier.PUBLIC)) {
                return name;
            }
            if (withMain == null) {
                withMain = name;
            }
        }
        return withMain != null ? withMain : first;
    }

    static boolean hasMain(ClassTree cls) {
        for (Tree member : cls.getMembers()) {
            if (member instanceof MethodTree) {
                MethodTree m = (MethodTree) member;
                if (m.getName().contentEquals("main")
                        && m.getModifiers().getFlags().contains(Modifier.STATIC)) {
                    return true;
                }
            }
        }
        return false;
    }
}
