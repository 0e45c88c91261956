// A first program per language (read a line, greet it), found by the language's id or aliases.

const STARTERS = [
  [["python3", "python", "py"], 'name = input()\nprint(f"Hello, {name}!")\n'],
  [
    ["c", "gcc"],
    "#include <stdio.h>\n\nint main(void) {\n    char name[100];\n" +
      '    if (scanf("%99s", name) == 1) {\n        printf("Hello, %s!\\n", name);\n    }\n' +
      "    return 0;\n}\n",
  ],
  [
    ["cpp", "c++", "g++", "cxx"],
    "#include <iostream>\n#include <string>\n\nint main() {\n    std::string name;\n" +
      '    std::cin >> name;\n    std::cout << "Hello, " << name << "!\\n";\n}\n',
  ],
  [
    ["java"],
    "import java.util.Scanner;\n\npublic class Main {\n" +
      "    public static void main(String[] args) {\n" +
      "        Scanner in = new Scanner(System.in);\n" +
      '        System.out.println("Hello, " + in.next() + "!");\n    }\n}\n',
  ],
  [
    ["go", "golang"],
    'package main\n\nimport "fmt"\n\nfunc main() {\n    var name string\n' +
      '    fmt.Scan(&name)\n    fmt.Printf("Hello, %s!\\n", name)\n}\n',
  ],
  [
    ["rust", "rs"],
    "use std::io::stdin;\n\nfn main() {\n    let mut name = String::new();\n" +
      '    stdin().read_line(&mut name).unwrap();\n    println!("Hello, {}!", name.trim());\n}\n',
  ],
  [
    ["javascript", "node", "js", "nodejs"],
    'const name = require("fs").readFileSync(0, "utf8").trim();\n' +
      "console.log(`Hello, ${name}!`);\n",
  ],
  [["bash", "sh"], 'read -r name\necho "Hello, $name!"\n'],
];

export function starterFor(language) {
  if (!language) return "";
  const names = [language.id, ...(language.aliases || [])].map((n) => String(n).toLowerCase());
  for (const [keys, text] of STARTERS) {
    if (keys.some((k) => names.includes(k))) return text;
  }
  return "";
}

export function isStarter(text) {
  return text.trim() === "" || STARTERS.some(([, t]) => t === text);
}
