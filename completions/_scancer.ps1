
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'scancer' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'scancer'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'scancer' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour the output: auto colours terminals unless NO_COLOR is set')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('predict', 'predict', [CompletionResultType]::ParameterValue, 'Run a model on image files, directories of images, or standard input: locally, on whole slides (--tile), or with a remote inference API (--remote)')
            [CompletionResult]::new('archive', 'archive', [CompletionResultType]::ParameterValue, 'Package a model and its handler configuration as a TorchServe .mar archive, or inspect one')
            [CompletionResult]::new('store', 'store', [CompletionResultType]::ParameterValue, 'Manage models on a TorchServe management API (Scancer''s model store)')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve models: TorchServe''s inference and management APIs, KServe V1 and V2, Prometheus metrics')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'scancer;predict' {
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Model file: AOTInductor package (.pt2), ONNX (.onnx) or TorchScript (.pt); or a TorchServe archive of one (.mar, .tar.gz, or an unpacked folder); or a WSInfer model folder (config.json and torchscript_model.pt); with --remote, the model''s name on the server')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'Model file: AOTInductor package (.pt2), ONNX (.onnx) or TorchScript (.pt); or a TorchServe archive of one (.mar, .tar.gz, or an unpacked folder); or a WSInfer model folder (config.json and torchscript_model.pt); with --remote, the model''s name on the server')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Handler configuration (TOML) [default: the model''s path with the extension .toml; for an archive, the configuration it carries or the one of its built-in image_classifier handler]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Handler configuration (TOML) [default: the model''s path with the extension .toml; for an archive, the configuration it carries or the one of its built-in image_classifier handler]')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the results to FILE instead of standard output: through FILE.partial, record by record, renamed to FILE when complete (devices and FIFOs are written in place)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the results to FILE instead of standard output: through FILE.partial, record by record, renamed to FILE when complete (devices and FIFOs are written in place)')
            [CompletionResult]::new('-b', '-b', [CompletionResultType]::ParameterName, 'Images per forward pass (serve: the most requests batched together). Every answer is the one this batch shape gives: a partial batch is padded, or runs at a smaller shape checked at load to answer bit for bit the same, so on one machine a result is identical whatever the image''s neighbours, the load and the threads; another CPU''s instruction set (AVX-512, AVX2, AVX) agrees within 1e-5, and so does another batch size')
            [CompletionResult]::new('--batch-size', '--batch-size', [CompletionResultType]::ParameterName, 'Images per forward pass (serve: the most requests batched together). Every answer is the one this batch shape gives: a partial batch is padded, or runs at a smaller shape checked at load to answer bit for bit the same, so on one machine a result is identical whatever the image''s neighbours, the load and the threads; another CPU''s instruction set (AVX-512, AVX2, AVX) agrees within 1e-5, and so does another batch size')
            [CompletionResult]::new('--threads', '--threads', [CompletionResultType]::ParameterName, 'Model instances running side by side, each running whole forward passes on one thread (serve: workers per model) [default: one per physical core; one on CUDA]')
            [CompletionResult]::new('--device', '--device', [CompletionResultType]::ParameterName, 'Where the model runs')
            [CompletionResult]::new('--max-image-pixels', '--max-image-pixels', [CompletionResultType]::ParameterName, 'Refuse images with more pixels than this (decompression-bomb guard)')
            [CompletionResult]::new('--decode-threads', '--decode-threads', [CompletionResultType]::ParameterName, 'Threads that decode and preprocess images [default: half the cores, at least 1]')
            [CompletionResult]::new('--shard', '--shard', [CompletionResultType]::ParameterName, 'Predict only the K-th of N equal contiguous slices of the inputs (K from 0), for job arrays; the outputs of shards 0 to N-1 concatenated equal one unsharded run in every format (only shard 0 writes the CSV or table header; JSON''s brackets come from the first and last)')
            [CompletionResult]::new('--mask-dir', '--mask-dir', [CompletionResultType]::ParameterName, 'Where segmentation masks are written [default: <output stem>-masks next to --output, else ./scancer-masks]')
            [CompletionResult]::new('--explain', '--explain', [CompletionResultType]::ParameterName, 'Write an Integrated Gradients attribution of each image as a PNG (the input, and the attribution over it): DIR/<the input''s path>.explain.png; on slides, of the hotspot window. About 50 ms a 96x96 patch on 2 cores (the model''s gradients, 15 steps)')
            [CompletionResult]::new('--stride', '--stride', [CompletionResultType]::ParameterName, 'Pixels between windows of a slide [default: the window size]')
            [CompletionResult]::new('--tissue-threshold', '--tissue-threshold', [CompletionResultType]::ParameterName, 'Mean saturation (HSV, of a 1/16 downsample) above which a window is tissue and runs')
            [CompletionResult]::new('--level', '--level', [CompletionResultType]::ParameterName, 'Pyramid level of slides in pyramidal formats, read as it is (0: full resolution; 2: 4x smaller, e.g. 10x of a 40x scan); level 1 and up need the `openslide` feature [default: the level that gives the handler configuration''s `mpp`, else 0]')
            [CompletionResult]::new('--mpp', '--mpp', [CompletionResultType]::ParameterName, 'Analyse slides at this resolution, in microns per pixel: the coarsest pyramid level not coarser is read and the rest resampled as preprocessing resamples (PCam: 0.972, 10x). Needs the slide''s resolution (its mpp property, TIFF or PNG resolution, or --slide-mpp)')
            [CompletionResult]::new('--magnification', '--magnification', [CompletionResultType]::ParameterName, 'Analyse slides at this objective magnification (10: 10x), relative to the scan''s objective power, or at 10/X microns per pixel where the slide declares none')
            [CompletionResult]::new('--slide-mpp', '--slide-mpp', [CompletionResultType]::ParameterName, 'The slides'' level-0 resolution in microns per pixel, for files that declare none (or an implausible one); a resolution a slide declares is kept (see --override-slide-mpp)')
            [CompletionResult]::new('--tiles', '--tiles', [CompletionResultType]::ParameterName, 'Write one row per window of every slide (path, x, y, width, height, tissue, saturation, probability, label, then prob_<label> for every class of a binary or multiclass model; windows that were not run have no probability): JSON Lines for a .jsonl file, else CSV')
            [CompletionResult]::new('--heatmap', '--heatmap', [CompletionResultType]::ParameterName, 'Write each slide''s heatmap: a PNG to look at (tissue in matplotlib''s plasma colours, not-tissue grey, a colour bar), or a pyramidal TIFF at the slide''s level-0 size that OpenSlide opens and viewers overlay (not-tissue transparent). FILE.png or FILE.tif for one input, else DIR/<the input''s path>.heatmap.png (or .tif, see --heatmap-format)')
            [CompletionResult]::new('--heatmap-format', '--heatmap-format', [CompletionResultType]::ParameterName, 'What --heatmap DIR writes for each slide')
            [CompletionResult]::new('--heatmap-size', '--heatmap-size', [CompletionResultType]::ParameterName, 'Largest side of a heatmap in pixels (16 to 16384)')
            [CompletionResult]::new('--smooth', '--smooth', [CompletionResultType]::ParameterName, 'Gaussian smoothing of the heatmap and the regions over tissue, sigma in analysed pixels (the slide as read at the model''s resolution, not level 0)')
            [CompletionResult]::new('--class', '--class', [CompletionResultType]::ParameterName, 'The class of a multiclass model whose map, regions and most suspicious window are each slide''s result (its label, or its index) [default: every class, one map each]')
            [CompletionResult]::new('--geojson', '--geojson', [CompletionResultType]::ParameterName, 'Write each slide''s windows and positive regions as QuPath GeoJSON (File > Import objects), in level-0 pixels: FILE.geojson for one input, else DIR/<the input''s path>.geojson')
            [CompletionResult]::new('--asap-xml', '--asap-xml', [CompletionResultType]::ParameterName, 'Write each slide''s positive regions as ASAP XML annotations (the Camelyon16 ground truth''s format): FILE.xml for one input, else DIR/<the input''s path>.xml')
            [CompletionResult]::new('--lesions', '--lesions', [CompletionResultType]::ParameterName, 'Write each slide''s regions as Camelyon16 lesion lines (Confidence,X,Y: peak probability and its level-0 location; no header): FILE.csv for one input, else DIR/<the input''s path>.lesions.csv')
            [CompletionResult]::new('--wsinfer-out', '--wsinfer-out', [CompletionResultType]::ParameterName, 'Write WSInfer''s results folder in DIR, for QuPath scripts and analyses built on WSInfer''s outputs: model-outputs-csv/<slide>.csv (minx,miny,width,height,prob_<class>... per tissue window, level-0 pixels), model-outputs-geojson/<slide>.geojson (a locked tile per tissue window), patches/<slide>.h5 (the windows'' coordinates), masks/<slide>.jpg (the slide with its tissue outlined) and run_metadata_<time>.json; <slide> is the slide''s file name without its extension')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'Predict with a remote inference API (TorchServe or scancer serve): each image is PUT to URL/predictions/MODEL, where --model is the model''s name [default URL: SCANCER_API_URL, else the profile''s api_url]. --config gives the labels where the server does not')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Requests in flight with --remote')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Requests in flight with --remote')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'With --remote, tries again this many times (waiting 0.2 s, then twice as long each time) when the server answers 503 or cannot be reached')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token [env: SCANCER_TOKEN]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'A file with the Bearer token, or TorchServe''s key_file.json')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for each answer')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour the output: auto colours terminals unless NO_COLOR is set')
            [CompletionResult]::new('--resume', '--resume', [CompletionResultType]::ParameterName, 'Go on from an interrupted run of the same command: the inputs already recorded in --output''s FILE.partial (or FILE) are skipped and the rest appended, so the output equals one uninterrupted run (formats json, jsonl, csv)')
            [CompletionResult]::new('--no-optimize', '--no-optimize', [CompletionResultType]::ParameterName, 'Run a TorchScript graph as saved, as TorchServe does, instead of frozen and optimised for inference (several times faster on CPU; results agree within a few 1e-6; .pt2 and ONNX models come optimised)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress bar and no summary on standard error')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress bar and no summary on standard error')
            [CompletionResult]::new('--tile', '--tile', [CompletionResultType]::ParameterName, 'Cut images larger than the model''s input into windows (whole slides), as a handler configuration with `patch = true` does; each slide gets one record (its most suspicious window, plus a summary)')
            [CompletionResult]::new('--all-tiles', '--all-tiles', [CompletionResultType]::ParameterName, 'Run every window of a slide, background included (the result still counts only tissue)')
            [CompletionResult]::new('--override-slide-mpp', '--override-slide-mpp', [CompletionResultType]::ParameterName, 'Use --slide-mpp for every slide, also those that declare a resolution (each one said in a warning): for slides whose declared resolution is wrong')
            [CompletionResult]::new('--overlay', '--overlay', [CompletionResultType]::ParameterName, 'Blend the heatmap over a downscaled copy of the slide')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'scancer;archive' {
            [CompletionResult]::new('--model-name', '--model-name', [CompletionResultType]::ParameterName, 'Model name (^[A-Za-z0-9][A-Za-z0-9_\-.]*$); the archive is <export path>/<name>.mar')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Model version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Model version')
            [CompletionResult]::new('--serialized-file', '--serialized-file', [CompletionResultType]::ParameterName, 'The model file: AOTInductor package (.pt2), ONNX (.onnx) or TorchScript (.pt)')
            [CompletionResult]::new('--handler', '--handler', [CompletionResultType]::ParameterName, 'TorchServe handler: a built-in name (image_classifier, ...) or a Python file [default with --config: a generated handler that applies the configuration]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'scancer handler configuration (TOML), carried in the archive as scancer-handler.toml')
            [CompletionResult]::new('--model-file', '--model-file', [CompletionResultType]::ParameterName, 'Python model file (eager-mode models; scancer itself runs exported models only)')
            [CompletionResult]::new('--extra-files', '--extra-files', [CompletionResultType]::ParameterName, 'Comma-separated files, folders (their contents go to the archive root) and glob patterns')
            [CompletionResult]::new('--runtime', '--runtime', [CompletionResultType]::ParameterName, 'Runtime named in the manifest')
            [CompletionResult]::new('--export-path', '--export-path', [CompletionResultType]::ParameterName, 'Folder to write the archive into')
            [CompletionResult]::new('--archive-format', '--archive-format', [CompletionResultType]::ParameterName, 'default: a deflated .mar (models stored); zip-store: nothing compressed; tgz: <name>.tar.gz; no-archive: a folder <name>/')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Python requirements file for TorchServe')
            [CompletionResult]::new('--requirements-file', '--requirements-file', [CompletionResultType]::ParameterName, 'Python requirements file for TorchServe')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'TorchServe model configuration (YAML: minWorkers, batchSize, ...)')
            [CompletionResult]::new('--config-file', '--config-file', [CompletionResultType]::ParameterName, 'TorchServe model configuration (YAML: minWorkers, batchSize, ...)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour the output: auto colours terminals unless NO_COLOR is set')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Overwrite an existing archive')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Overwrite an existing archive')
            [CompletionResult]::new('--reproducible', '--reproducible', [CompletionResultType]::ParameterName, 'Fixed timestamps (SOURCE_DATE_EPOCH, else 1980-01-01) so that the same inputs give the same bytes, for CI artefacts')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Print an archive''s manifest, files and handler configuration')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'scancer;archive;inspect' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour the output: auto colours terminals unless NO_COLOR is set')
            [CompletionResult]::new('--verify', '--verify', [CompletionResultType]::ParameterName, 'Also load the model and run one forward pass on an input of the configured shape')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'scancer;archive;help' {
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Print an archive''s manifest, files and handler configuration')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'scancer;archive;help;inspect' {
            break
        }
        'scancer;archive;help;help' {
            break
        }
        'scancer;store' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token [env: SCANCER_TOKEN]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'A file with the Bearer token, or TorchServe''s key_file.json')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for each answer')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour the output: auto colours terminals unless NO_COLOR is set')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the server''s JSON instead of a table (list: every page merged)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the registered models (following every page)')
            [CompletionResult]::new('describe', 'describe', [CompletionResultType]::ParameterValue, 'Describe a model: its versions, workers and queue')
            [CompletionResult]::new('register', 'register', [CompletionResultType]::ParameterValue, 'Register an archive: an http(s) URL the server downloads, or a file in its model store')
            [CompletionResult]::new('scale', 'scale', [CompletionResultType]::ParameterValue, 'Set a model''s number of workers')
            [CompletionResult]::new('set-default', 'set-default', [CompletionResultType]::ParameterValue, 'Make a version the one that /predictions/{model} answers with')
            [CompletionResult]::new('unregister', 'unregister', [CompletionResultType]::ParameterValue, 'Unregister a model version (the default one unless --version)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'scancer;store;list' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token [env: SCANCER_TOKEN]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'A file with the Bearer token, or TorchServe''s key_file.json')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for each answer')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour the output: auto colours terminals unless NO_COLOR is set')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the server''s JSON instead of a table (list: every page merged)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'scancer;store;describe' {
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'One version [default: the default version]')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token [env: SCANCER_TOKEN]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'A file with the Bearer token, or TorchServe''s key_file.json')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for each answer')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour the output: auto colours terminals unless NO_COLOR is set')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Every version')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the server''s JSON instead of a table (list: every page merged)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'scancer;store;register' {
            [CompletionResult]::new('--model-name', '--model-name', [CompletionResultType]::ParameterName, 'Name to register the model under [default: the archive''s]')
            [CompletionResult]::new('--handler', '--handler', [CompletionResultType]::ParameterName, 'Handler to use instead of the archive''s')
            [CompletionResult]::new('--runtime', '--runtime', [CompletionResultType]::ParameterName, 'Runtime to use instead of the archive''s')
            [CompletionResult]::new('--batch-size', '--batch-size', [CompletionResultType]::ParameterName, 'Requests per batch')
            [CompletionResult]::new('--max-batch-delay', '--max-batch-delay', [CompletionResultType]::ParameterName, 'Milliseconds to wait to fill a batch')
            [CompletionResult]::new('--initial-workers', '--initial-workers', [CompletionResultType]::ParameterName, 'Workers to start [TorchServe''s default: its default_workers_per_model]')
            [CompletionResult]::new('--response-timeout', '--response-timeout', [CompletionResultType]::ParameterName, 'Seconds TorchServe waits for one inference')
            [CompletionResult]::new('--wait-timeout', '--wait-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait with --wait')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token [env: SCANCER_TOKEN]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'A file with the Bearer token, or TorchServe''s key_file.json')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for each answer')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour the output: auto colours terminals unless NO_COLOR is set')
            [CompletionResult]::new('--synchronous', '--synchronous', [CompletionResultType]::ParameterName, 'Let the server answer only once the workers have started')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait until the wanted number of workers is READY')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the server''s JSON instead of a table (list: every page merged)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'scancer;store;scale' {
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'The version to scale [default: the default version]')
            [CompletionResult]::new('--min-workers', '--min-workers', [CompletionResultType]::ParameterName, 'Fewest workers')
            [CompletionResult]::new('--max-workers', '--max-workers', [CompletionResultType]::ParameterName, 'Most workers')
            [CompletionResult]::new('--wait-timeout', '--wait-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait with --wait')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token [env: SCANCER_TOKEN]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'A file with the Bearer token, or TorchServe''s key_file.json')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for each answer')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour the output: auto colours terminals unless NO_COLOR is set')
            [CompletionResult]::new('--synchronous', '--synchronous', [CompletionResultType]::ParameterName, 'Let the server answer only once the workers have changed')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait until the wanted number of workers is READY')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the server''s JSON instead of a table (list: every page merged)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'scancer;store;set-default' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token [env: SCANCER_TOKEN]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'A file with the Bearer token, or TorchServe''s key_file.json')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for each answer')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour the output: auto colours terminals unless NO_COLOR is set')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the server''s JSON instead of a table (list: every page merged)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'scancer;store;unregister' {
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'The version to remove')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token [env: SCANCER_TOKEN]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'A file with the Bearer token, or TorchServe''s key_file.json')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for each answer')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour the output: auto colours terminals unless NO_COLOR is set')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the server''s JSON instead of a table (list: every page merged)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'scancer;store;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the registered models (following every page)')
            [CompletionResult]::new('describe', 'describe', [CompletionResultType]::ParameterValue, 'Describe a model: its versions, workers and queue')
            [CompletionResult]::new('register', 'register', [CompletionResultType]::ParameterValue, 'Register an archive: an http(s) URL the server downloads, or a file in its model store')
            [CompletionResult]::new('scale', 'scale', [CompletionResultType]::ParameterValue, 'Set a model''s number of workers')
            [CompletionResult]::new('set-default', 'set-default', [CompletionResultType]::ParameterValue, 'Make a version the one that /predictions/{model} answers with')
            [CompletionResult]::new('unregister', 'unregister', [CompletionResultType]::ParameterValue, 'Unregister a model version (the default one unless --version)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'scancer;store;help;list' {
            break
        }
        'scancer;store;help;describe' {
            break
        }
        'scancer;store;help;register' {
            break
        }
        'scancer;store;help;scale' {
            break
        }
        'scancer;store;help;set-default' {
            break
        }
        'scancer;store;help;unregister' {
            break
        }
        'scancer;store;help;help' {
            break
        }
        'scancer;serve' {
            [CompletionResult]::new('--model-store', '--model-store', [CompletionResultType]::ParameterName, 'TorchServe''s model store: the folder archives are registered from. Turns on TorchServe''s layout: inference, management and metrics APIs on their own ports')
            [CompletionResult]::new('--models', '--models', [CompletionResultType]::ParameterName, 'Archives in the model store to register at start: `all`, FILE.mar or NAME=FILE.mar (TorchServe''s load_models; ignored when a config snapshot is restored)')
            [CompletionResult]::new('--ts-config', '--ts-config', [CompletionResultType]::ParameterName, 'TorchServe''s config.properties (also: TS_CONFIG_FILE). Without it, the newest config snapshot is restored, else ./config.properties is read')
            [CompletionResult]::new('--allowed-urls', '--allowed-urls', [CompletionResultType]::ParameterName, 'URLs the management API may register archives from: comma-separated regular expressions, each matching a whole URL (TorchServe''s allowed_urls). Unlike TorchServe, none by default: only the model store')
            [CompletionResult]::new('--max-download-size', '--max-download-size', [CompletionResultType]::ParameterName, 'Largest archive a registration downloads, in bytes')
            [CompletionResult]::new('--download-timeout', '--download-timeout', [CompletionResultType]::ParameterName, 'Seconds a registration''s download may take')
            [CompletionResult]::new('--workers', '--workers', [CompletionResultType]::ParameterName, 'Workers each model starts with: model instances running batches side by side, each on one thread (TorchServe''s default_workers_per_model) [default: --threads, else one per physical core; one on CUDA]')
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'Address to listen on; anything but loopback should come with --auth-file or --token-file [default: 127.0.0.1]')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Port of the inference API, or of every API without --model-store (0: any free port, printed at start-up) [default: 8080]')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port of the inference API, or of every API without --model-store (0: any free port, printed at start-up) [default: 8080]')
            [CompletionResult]::new('--management-port', '--management-port', [CompletionResultType]::ParameterName, 'Port of the management API, with --model-store (0: any free port) [default: 8081]')
            [CompletionResult]::new('--metrics-port', '--metrics-port', [CompletionResultType]::ParameterName, 'Port of the metrics API, with --model-store (0: any free port) [default: 8082]')
            [CompletionResult]::new('--grpc-port', '--grpc-port', [CompletionResultType]::ParameterName, 'gRPC port: KServe V2''s and TorchServe''s gRPC inference services (0: any free port, printed at start-up) [default: 7070]')
            [CompletionResult]::new('--grpc-management-port', '--grpc-management-port', [CompletionResultType]::ParameterName, 'gRPC management port, with --model-store: TorchServe''s gRPC management API (0: any free port) [default: 7071]')
            [CompletionResult]::new('-b', '-b', [CompletionResultType]::ParameterName, 'Images per forward pass (serve: the most requests batched together). Every answer is the one this batch shape gives: a partial batch is padded, or runs at a smaller shape checked at load to answer bit for bit the same, so on one machine a result is identical whatever the image''s neighbours, the load and the threads; another CPU''s instruction set (AVX-512, AVX2, AVX) agrees within 1e-5, and so does another batch size')
            [CompletionResult]::new('--batch-size', '--batch-size', [CompletionResultType]::ParameterName, 'Images per forward pass (serve: the most requests batched together). Every answer is the one this batch shape gives: a partial batch is padded, or runs at a smaller shape checked at load to answer bit for bit the same, so on one machine a result is identical whatever the image''s neighbours, the load and the threads; another CPU''s instruction set (AVX-512, AVX2, AVX) agrees within 1e-5, and so does another batch size')
            [CompletionResult]::new('--threads', '--threads', [CompletionResultType]::ParameterName, 'Model instances running side by side, each running whole forward passes on one thread (serve: workers per model) [default: one per physical core; one on CUDA]')
            [CompletionResult]::new('--device', '--device', [CompletionResultType]::ParameterName, 'Where the model runs')
            [CompletionResult]::new('--max-image-pixels', '--max-image-pixels', [CompletionResultType]::ParameterName, 'Refuse images with more pixels than this (decompression-bomb guard)')
            [CompletionResult]::new('--max-batch-delay', '--max-batch-delay', [CompletionResultType]::ParameterName, 'Milliseconds to wait for more requests to fill a batch once one is queued (stops early when no other request is on its way)')
            [CompletionResult]::new('--job-queue-size', '--job-queue-size', [CompletionResultType]::ParameterName, 'Images that may wait for each model version; a request finding no room waits up to --queue-wait, then gets 503 [default: 100]')
            [CompletionResult]::new('--queue-wait', '--queue-wait', [CompletionResultType]::ParameterName, 'Milliseconds a request may wait for room in a full queue before its 503 (0: TorchServe''s immediate 503)')
            [CompletionResult]::new('--max-request-size', '--max-request-size', [CompletionResultType]::ParameterName, 'Largest request body in bytes; larger ones are answered 413 (TorchServe''s max_request_size) [default: 6553500]')
            [CompletionResult]::new('--client-timeout', '--client-timeout', [CompletionResultType]::ParameterName, 'Seconds a client may take to send a request once started, or to read its answer (408 after)')
            [CompletionResult]::new('--head-timeout', '--head-timeout', [CompletionResultType]::ParameterName, 'Seconds a client may take to send a request head once its first byte has come (408 after)')
            [CompletionResult]::new('--keep-alive-timeout', '--keep-alive-timeout', [CompletionResultType]::ParameterName, 'Seconds an idle keep-alive connection stays open')
            [CompletionResult]::new('--max-connections', '--max-connections', [CompletionResultType]::ParameterName, 'Open connections at most; more are answered 503 and closed')
            [CompletionResult]::new('--max-body-memory', '--max-body-memory', [CompletionResultType]::ParameterName, 'Request body bytes held in memory at once, over all requests; further bodies wait for room')
            [CompletionResult]::new('--auth-file', '--auth-file', [CompletionResultType]::ParameterName, 'HTTP Basic credentials, one name:password per line (also: SCANCER_AUTH=name:password)')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Bearer tokens, one per line, or TorchServe''s key_file.json (also: SCANCER_TOKEN)')
            [CompletionResult]::new('--open', '--open', [CompletionResultType]::ParameterName, 'Endpoints that need no credentials when authentication is on [default: health; none with --model-store, where TorchServe''s /ping needs the inference key]')
            [CompletionResult]::new('--slides', '--slides', [CompletionResultType]::ParameterName, 'Serve the whole-slide images under DIR on the inference port: the slide API (/slides: Deep Zoom tiles, thumbnails, properties, uploads); its catalogue is kept in DIR/.scancer')
            [CompletionResult]::new('--max-slide-upload', '--max-slide-upload', [CompletionResultType]::ParameterName, 'Largest slide upload (PUT /slides/NAME) in bytes')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour the output: auto colours terminals unless NO_COLOR is set')
            [CompletionResult]::new('--ncs', '--ncs', [CompletionResultType]::ParameterName, 'Neither write nor restore config snapshots (TorchServe''s --no-config-snapshots)')
            [CompletionResult]::new('--start', '--start', [CompletionResultType]::ParameterName, 'Accepted for TorchServe''s command lines (KServe''s runtime passes it): serve always starts')
            [CompletionResult]::new('--foreground', '--foreground', [CompletionResultType]::ParameterName, 'Accepted for TorchServe''s command lines: serve always runs in the foreground')
            [CompletionResult]::new('--enable-model-api', '--enable-model-api', [CompletionResultType]::ParameterName, 'Allow registering and unregistering models through the management API (TorchServe''s enable_model_api)')
            [CompletionResult]::new('--disable-token-auth', '--disable-token-auth', [CompletionResultType]::ParameterName, 'No TorchServe token authorization with --model-store (its key_file.json; TorchServe''s disable_token_authorization)')
            [CompletionResult]::new('--dt', '--dt', [CompletionResultType]::ParameterName, 'No TorchServe token authorization with --model-store (its key_file.json; TorchServe''s disable_token_authorization)')
            [CompletionResult]::new('--no-grpc', '--no-grpc', [CompletionResultType]::ParameterName, 'No gRPC ports')
            [CompletionResult]::new('--no-optimize', '--no-optimize', [CompletionResultType]::ParameterName, 'Run a TorchScript graph as saved, as TorchServe does, instead of frozen and optimised for inference (several times faster on CPU; results agree within a few 1e-6; .pt2 and ONNX models come optimised)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No access log on standard error')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No access log on standard error')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'scancer;help' {
            [CompletionResult]::new('predict', 'predict', [CompletionResultType]::ParameterValue, 'Run a model on image files, directories of images, or standard input: locally, on whole slides (--tile), or with a remote inference API (--remote)')
            [CompletionResult]::new('archive', 'archive', [CompletionResultType]::ParameterValue, 'Package a model and its handler configuration as a TorchServe .mar archive, or inspect one')
            [CompletionResult]::new('store', 'store', [CompletionResultType]::ParameterValue, 'Manage models on a TorchServe management API (Scancer''s model store)')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve models: TorchServe''s inference and management APIs, KServe V1 and V2, Prometheus metrics')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'scancer;help;predict' {
            break
        }
        'scancer;help;archive' {
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Print an archive''s manifest, files and handler configuration')
            break
        }
        'scancer;help;archive;inspect' {
            break
        }
        'scancer;help;store' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the registered models (following every page)')
            [CompletionResult]::new('describe', 'describe', [CompletionResultType]::ParameterValue, 'Describe a model: its versions, workers and queue')
            [CompletionResult]::new('register', 'register', [CompletionResultType]::ParameterValue, 'Register an archive: an http(s) URL the server downloads, or a file in its model store')
            [CompletionResult]::new('scale', 'scale', [CompletionResultType]::ParameterValue, 'Set a model''s number of workers')
            [CompletionResult]::new('set-default', 'set-default', [CompletionResultType]::ParameterValue, 'Make a version the one that /predictions/{model} answers with')
            [CompletionResult]::new('unregister', 'unregister', [CompletionResultType]::ParameterValue, 'Unregister a model version (the default one unless --version)')
            break
        }
        'scancer;help;store;list' {
            break
        }
        'scancer;help;store;describe' {
            break
        }
        'scancer;help;store;register' {
            break
        }
        'scancer;help;store;scale' {
            break
        }
        'scancer;help;store;set-default' {
            break
        }
        'scancer;help;store;unregister' {
            break
        }
        'scancer;help;serve' {
            break
        }
        'scancer;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
