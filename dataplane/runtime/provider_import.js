// The Node half of dataplane/runtime/provider_import.py, preloaded into jsii's Node process through
// NODE_OPTIONS. The index of @cdktf/provider-aws requires all 2,135 of its modules; this turns
// each `exports.name = require("./name");` line of that one file into a getter, so a module
// loads when it is first used. Every other file is compiled as is, and so is every file when
// DATAPLANE_PROVIDER_IMPORT=stock.
"use strict";

if (process.env.DATAPLANE_PROVIDER_IMPORT !== "stock") {
  const Module = require("module");
  const path = require("path");
  const index = path.sep + path.join("@cdktf", "provider-aws", "lib", "index.js");
  const eager = /^exports\.(\w+) = (require\("\.\/[\w-]+"\));$/gm;
  const lazy = 'Object.defineProperty(exports, "$1", { enumerable: true, configurable: true, get: () => $2 });';
  const compile = Module.prototype._compile;
  Module.prototype._compile = function (content, filename) {
    return compile.call(this, filename.endsWith(index) ? content.replace(eager, lazy) : content, filename);
  };
}
