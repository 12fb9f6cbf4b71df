# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_scancer_global_optspecs
    string join \n color= h/help V/version
end

function __fish_scancer_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_scancer_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_scancer_using_subcommand
    set -l cmd (__fish_scancer_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c scancer -n "__fish_scancer_needs_command" -l color -d 'When to colour the output: auto colours terminals unless NO_COLOR is set' -r -f -a "auto\t''
always\t''
never\t''"
complete -c scancer -n "__fish_scancer_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c scancer -n "__fish_scancer_needs_command" -s V -l version -d 'Print version'
complete -c scancer -n "__fish_scancer_needs_command" -f -a "predict" -d 'Run a model on image files, directories of images, or standard input: locally, on whole slides (--tile), or with a remote inference API (--remote)'
complete -c scancer -n "__fish_scancer_needs_command" -f -a "archive" -d 'Package a model and its handler configuration as a TorchServe .mar archive, or inspect one'
complete -c scancer -n "__fish_scancer_needs_command" -f -a "store" -d 'Manage models on a TorchServe management API (Scancer\'s model store)'
complete -c scancer -n "__fish_scancer_needs_command" -f -a "serve" -d 'Serve models: TorchServe\'s inference and management APIs, KServe V1 and V2, Prometheus metrics'
complete -c scancer -n "__fish_scancer_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c scancer -n "__fish_scancer_using_subcommand predict" -s m -l model -d 'Model file: AOTInductor package (.pt2), ONNX (.onnx) or TorchScript (.pt); or a TorchServe archive of one (.mar, .tar.gz, or an unpacked folder); or a WSInfer model folder (config.json and torchscript_model.pt); with --remote, the model\'s name on the server' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand predict" -s c -l config -d 'Handler configuration (TOML) [default: the model\'s path with the extension .toml; for an archive, the configuration it carries or the one of its built-in image_classifier handler]' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand predict" -s f -l format -d 'Output format' -r -f -a "table\t'Aligned columns for reading on a terminal'
json\t'One JSON array of records'
jsonl\t'One JSON record per line'
csv\t'A header, then one row per record'"
complete -c scancer -n "__fish_scancer_using_subcommand predict" -s o -l output -d 'Write the results to FILE instead of standard output: through FILE.partial, record by record, renamed to FILE when complete (devices and FIFOs are written in place)' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand predict" -s b -l batch-size -d 'Images per forward pass (serve: the most requests batched together). Every answer is the one this batch shape gives: a partial batch is padded, or runs at a smaller shape checked at load to answer bit for bit the same, so on one machine a result is identical whatever the image\'s neighbours, the load and the threads; another CPU\'s instruction set (AVX-512, AVX2, AVX) agrees within 1e-5, and so does another batch size' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l threads -d 'Model instances running side by side, each running whole forward passes on one thread (serve: workers per model) [default: one per physical core; one on CUDA]' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l device -d 'Where the model runs' -r -f -a "cpu\t''
cuda\t''
auto\t'CUDA when a GPU is visible, else CPU'"
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l max-image-pixels -d 'Refuse images with more pixels than this (decompression-bomb guard)' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l decode-threads -d 'Threads that decode and preprocess images [default: half the cores, at least 1]' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l shard -d 'Predict only the K-th of N equal contiguous slices of the inputs (K from 0), for job arrays; the outputs of shards 0 to N-1 concatenated equal one unsharded run in every format (only shard 0 writes the CSV or table header; JSON\'s brackets come from the first and last)' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l mask-dir -d 'Where segmentation masks are written [default: <output stem>-masks next to --output, else ./scancer-masks]' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l explain -d 'Write an Integrated Gradients attribution of each image as a PNG (the input, and the attribution over it): DIR/<the input\'s path>.explain.png; on slides, of the hotspot window. About 50 ms a 96x96 patch on 2 cores (the model\'s gradients, 15 steps)' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l stride -d 'Pixels between windows of a slide [default: the window size]' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l tissue-threshold -d 'Mean saturation (HSV, of a 1/16 downsample) above which a window is tissue and runs' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l level -d 'Pyramid level of slides in pyramidal formats, read as it is (0: full resolution; 2: 4x smaller, e.g. 10x of a 40x scan); level 1 and up need the `openslide` feature [default: the level that gives the handler configuration\'s `mpp`, else 0]' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l mpp -d 'Analyse slides at this resolution, in microns per pixel: the coarsest pyramid level not coarser is read and the rest resampled as preprocessing resamples (PCam: 0.972, 10x). Needs the slide\'s resolution (its mpp property, TIFF or PNG resolution, or --slide-mpp)' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l magnification -d 'Analyse slides at this objective magnification (10: 10x), relative to the scan\'s objective power, or at 10/X microns per pixel where the slide declares none' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l slide-mpp -d 'The slides\' level-0 resolution in microns per pixel, for files that declare none (or an implausible one); a resolution a slide declares is kept (see --override-slide-mpp)' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l tiles -d 'Write one row per window of every slide (path, x, y, width, height, tissue, saturation, probability, label, then prob_<label> for every class of a binary or multiclass model; windows that were not run have no probability): JSON Lines for a .jsonl file, else CSV' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l heatmap -d 'Write each slide\'s heatmap: a PNG to look at (tissue in matplotlib\'s plasma colours, not-tissue grey, a colour bar), or a pyramidal TIFF at the slide\'s level-0 size that OpenSlide opens and viewers overlay (not-tissue transparent). FILE.png or FILE.tif for one input, else DIR/<the input\'s path>.heatmap.png (or .tif, see --heatmap-format)' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l heatmap-format -d 'What --heatmap DIR writes for each slide' -r -f -a "png\t'A PNG with a colour bar, to look at'
tiff\t'A pyramidal TIFF at the slide\'s size, to overlay in a viewer'"
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l heatmap-size -d 'Largest side of a heatmap in pixels (16 to 16384)' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l smooth -d 'Gaussian smoothing of the heatmap and the regions over tissue, sigma in analysed pixels (the slide as read at the model\'s resolution, not level 0)' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l class -d 'The class of a multiclass model whose map, regions and most suspicious window are each slide\'s result (its label, or its index) [default: every class, one map each]' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l geojson -d 'Write each slide\'s windows and positive regions as QuPath GeoJSON (File > Import objects), in level-0 pixels: FILE.geojson for one input, else DIR/<the input\'s path>.geojson' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l asap-xml -d 'Write each slide\'s positive regions as ASAP XML annotations (the Camelyon16 ground truth\'s format): FILE.xml for one input, else DIR/<the input\'s path>.xml' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l lesions -d 'Write each slide\'s regions as Camelyon16 lesion lines (Confidence,X,Y: peak probability and its level-0 location; no header): FILE.csv for one input, else DIR/<the input\'s path>.lesions.csv' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l wsinfer-out -d 'Write WSInfer\'s results folder in DIR, for QuPath scripts and analyses built on WSInfer\'s outputs: model-outputs-csv/<slide>.csv (minx,miny,width,height,prob_<class>... per tissue window, level-0 pixels), model-outputs-geojson/<slide>.geojson (a locked tile per tissue window), patches/<slide>.h5 (the windows\' coordinates), masks/<slide>.jpg (the slide with its tissue outlined) and run_metadata_<time>.json; <slide> is the slide\'s file name without its extension' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l remote -d 'Predict with a remote inference API (TorchServe or scancer serve): each image is PUT to URL/predictions/MODEL, where --model is the model\'s name [default URL: SCANCER_API_URL, else the profile\'s api_url]. --config gives the labels where the server does not' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -s j -l jobs -d 'Requests in flight with --remote' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l retries -d 'With --remote, tries again this many times (waiting 0.2 s, then twice as long each time) when the server answers 503 or cannot be reached' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l profile -d 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -s u -l user -d 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l token -d 'Bearer token [env: SCANCER_TOKEN]' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l token-file -d 'A file with the Bearer token, or TorchServe\'s key_file.json' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l timeout -d 'Seconds to wait for each answer' -r
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l color -d 'When to colour the output: auto colours terminals unless NO_COLOR is set' -r -f -a "auto\t''
always\t''
never\t''"
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l resume -d 'Go on from an interrupted run of the same command: the inputs already recorded in --output\'s FILE.partial (or FILE) are skipped and the rest appended, so the output equals one uninterrupted run (formats json, jsonl, csv)'
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l no-optimize -d 'Run a TorchScript graph as saved, as TorchServe does, instead of frozen and optimised for inference (several times faster on CPU; results agree within a few 1e-6; .pt2 and ONNX models come optimised)'
complete -c scancer -n "__fish_scancer_using_subcommand predict" -s q -l quiet -d 'No progress bar and no summary on standard error'
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l tile -d 'Cut images larger than the model\'s input into windows (whole slides), as a handler configuration with `patch = true` does; each slide gets one record (its most suspicious window, plus a summary)'
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l all-tiles -d 'Run every window of a slide, background included (the result still counts only tissue)'
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l override-slide-mpp -d 'Use --slide-mpp for every slide, also those that declare a resolution (each one said in a warning): for slides whose declared resolution is wrong'
complete -c scancer -n "__fish_scancer_using_subcommand predict" -l overlay -d 'Blend the heatmap over a downscaled copy of the slide'
complete -c scancer -n "__fish_scancer_using_subcommand predict" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c scancer -n "__fish_scancer_using_subcommand predict" -s V -l version -d 'Print version'
complete -c scancer -n "__fish_scancer_using_subcommand archive; and not __fish_seen_subcommand_from inspect help" -l model-name -d 'Model name (^[A-Za-z0-9][A-Za-z0-9_\\-.]*$); the archive is <export path>/<name>.mar' -r
complete -c scancer -n "__fish_scancer_using_subcommand archive; and not __fish_seen_subcommand_from inspect help" -s v -l version -d 'Model version' -r
complete -c scancer -n "__fish_scancer_using_subcommand archive; and not __fish_seen_subcommand_from inspect help" -l serialized-file -d 'The model file: AOTInductor package (.pt2), ONNX (.onnx) or TorchScript (.pt)' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand archive; and not __fish_seen_subcommand_from inspect help" -l handler -d 'TorchServe handler: a built-in name (image_classifier, ...) or a Python file [default with --config: a generated handler that applies the configuration]' -r
complete -c scancer -n "__fish_scancer_using_subcommand archive; and not __fish_seen_subcommand_from inspect help" -l config -d 'scancer handler configuration (TOML), carried in the archive as scancer-handler.toml' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand archive; and not __fish_seen_subcommand_from inspect help" -l model-file -d 'Python model file (eager-mode models; scancer itself runs exported models only)' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand archive; and not __fish_seen_subcommand_from inspect help" -l extra-files -d 'Comma-separated files, folders (their contents go to the archive root) and glob patterns' -r
complete -c scancer -n "__fish_scancer_using_subcommand archive; and not __fish_seen_subcommand_from inspect help" -l runtime -d 'Runtime named in the manifest' -r -f -a "python\t''
python3\t''
LSP\t''"
complete -c scancer -n "__fish_scancer_using_subcommand archive; and not __fish_seen_subcommand_from inspect help" -l export-path -d 'Folder to write the archive into' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand archive; and not __fish_seen_subcommand_from inspect help" -l archive-format -d 'default: a deflated .mar (models stored); zip-store: nothing compressed; tgz: <name>.tar.gz; no-archive: a folder <name>/' -r -f -a "default\t''
zip-store\t''
tgz\t''
no-archive\t''"
complete -c scancer -n "__fish_scancer_using_subcommand archive; and not __fish_seen_subcommand_from inspect help" -s r -l requirements-file -d 'Python requirements file for TorchServe' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand archive; and not __fish_seen_subcommand_from inspect help" -s c -l config-file -d 'TorchServe model configuration (YAML: minWorkers, batchSize, ...)' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand archive; and not __fish_seen_subcommand_from inspect help" -l color -d 'When to colour the output: auto colours terminals unless NO_COLOR is set' -r -f -a "auto\t''
always\t''
never\t''"
complete -c scancer -n "__fish_scancer_using_subcommand archive; and not __fish_seen_subcommand_from inspect help" -s f -l force -d 'Overwrite an existing archive'
complete -c scancer -n "__fish_scancer_using_subcommand archive; and not __fish_seen_subcommand_from inspect help" -l reproducible -d 'Fixed timestamps (SOURCE_DATE_EPOCH, else 1980-01-01) so that the same inputs give the same bytes, for CI artefacts'
complete -c scancer -n "__fish_scancer_using_subcommand archive; and not __fish_seen_subcommand_from inspect help" -s h -l help -d 'Print help'
complete -c scancer -n "__fish_scancer_using_subcommand archive; and not __fish_seen_subcommand_from inspect help" -f -a "inspect" -d 'Print an archive\'s manifest, files and handler configuration'
complete -c scancer -n "__fish_scancer_using_subcommand archive; and not __fish_seen_subcommand_from inspect help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c scancer -n "__fish_scancer_using_subcommand archive; and __fish_seen_subcommand_from inspect" -l color -d 'When to colour the output: auto colours terminals unless NO_COLOR is set' -r -f -a "auto\t''
always\t''
never\t''"
complete -c scancer -n "__fish_scancer_using_subcommand archive; and __fish_seen_subcommand_from inspect" -l verify -d 'Also load the model and run one forward pass on an input of the configured shape'
complete -c scancer -n "__fish_scancer_using_subcommand archive; and __fish_seen_subcommand_from inspect" -s h -l help -d 'Print help'
complete -c scancer -n "__fish_scancer_using_subcommand archive; and __fish_seen_subcommand_from help" -f -a "inspect" -d 'Print an archive\'s manifest, files and handler configuration'
complete -c scancer -n "__fish_scancer_using_subcommand archive; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c scancer -n "__fish_scancer_using_subcommand store; and not __fish_seen_subcommand_from list describe register scale set-default unregister help" -l url -d 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and not __fish_seen_subcommand_from list describe register scale set-default unregister help" -l profile -d 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and not __fish_seen_subcommand_from list describe register scale set-default unregister help" -s u -l user -d 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and not __fish_seen_subcommand_from list describe register scale set-default unregister help" -l token -d 'Bearer token [env: SCANCER_TOKEN]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and not __fish_seen_subcommand_from list describe register scale set-default unregister help" -l token-file -d 'A file with the Bearer token, or TorchServe\'s key_file.json' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand store; and not __fish_seen_subcommand_from list describe register scale set-default unregister help" -l timeout -d 'Seconds to wait for each answer' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and not __fish_seen_subcommand_from list describe register scale set-default unregister help" -l color -d 'When to colour the output: auto colours terminals unless NO_COLOR is set' -r -f -a "auto\t''
always\t''
never\t''"
complete -c scancer -n "__fish_scancer_using_subcommand store; and not __fish_seen_subcommand_from list describe register scale set-default unregister help" -l json -d 'Print the server\'s JSON instead of a table (list: every page merged)'
complete -c scancer -n "__fish_scancer_using_subcommand store; and not __fish_seen_subcommand_from list describe register scale set-default unregister help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c scancer -n "__fish_scancer_using_subcommand store; and not __fish_seen_subcommand_from list describe register scale set-default unregister help" -s V -l version -d 'Print version'
complete -c scancer -n "__fish_scancer_using_subcommand store; and not __fish_seen_subcommand_from list describe register scale set-default unregister help" -f -a "list" -d 'List the registered models (following every page)'
complete -c scancer -n "__fish_scancer_using_subcommand store; and not __fish_seen_subcommand_from list describe register scale set-default unregister help" -f -a "describe" -d 'Describe a model: its versions, workers and queue'
complete -c scancer -n "__fish_scancer_using_subcommand store; and not __fish_seen_subcommand_from list describe register scale set-default unregister help" -f -a "register" -d 'Register an archive: an http(s) URL the server downloads, or a file in its model store'
complete -c scancer -n "__fish_scancer_using_subcommand store; and not __fish_seen_subcommand_from list describe register scale set-default unregister help" -f -a "scale" -d 'Set a model\'s number of workers'
complete -c scancer -n "__fish_scancer_using_subcommand store; and not __fish_seen_subcommand_from list describe register scale set-default unregister help" -f -a "set-default" -d 'Make a version the one that /predictions/{model} answers with'
complete -c scancer -n "__fish_scancer_using_subcommand store; and not __fish_seen_subcommand_from list describe register scale set-default unregister help" -f -a "unregister" -d 'Unregister a model version (the default one unless --version)'
complete -c scancer -n "__fish_scancer_using_subcommand store; and not __fish_seen_subcommand_from list describe register scale set-default unregister help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from list" -l url -d 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from list" -l profile -d 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from list" -s u -l user -d 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from list" -l token -d 'Bearer token [env: SCANCER_TOKEN]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from list" -l token-file -d 'A file with the Bearer token, or TorchServe\'s key_file.json' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from list" -l timeout -d 'Seconds to wait for each answer' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from list" -l color -d 'When to colour the output: auto colours terminals unless NO_COLOR is set' -r -f -a "auto\t''
always\t''
never\t''"
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from list" -l json -d 'Print the server\'s JSON instead of a table (list: every page merged)'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from describe" -l version -d 'One version [default: the default version]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from describe" -l url -d 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from describe" -l profile -d 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from describe" -s u -l user -d 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from describe" -l token -d 'Bearer token [env: SCANCER_TOKEN]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from describe" -l token-file -d 'A file with the Bearer token, or TorchServe\'s key_file.json' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from describe" -l timeout -d 'Seconds to wait for each answer' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from describe" -l color -d 'When to colour the output: auto colours terminals unless NO_COLOR is set' -r -f -a "auto\t''
always\t''
never\t''"
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from describe" -l all -d 'Every version'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from describe" -l json -d 'Print the server\'s JSON instead of a table (list: every page merged)'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from describe" -s h -l help -d 'Print help'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -l model-name -d 'Name to register the model under [default: the archive\'s]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -l handler -d 'Handler to use instead of the archive\'s' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -l runtime -d 'Runtime to use instead of the archive\'s' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -l batch-size -d 'Requests per batch' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -l max-batch-delay -d 'Milliseconds to wait to fill a batch' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -l initial-workers -d 'Workers to start [TorchServe\'s default: its default_workers_per_model]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -l response-timeout -d 'Seconds TorchServe waits for one inference' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -l wait-timeout -d 'Seconds to wait with --wait' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -l url -d 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -l profile -d 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -s u -l user -d 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -l token -d 'Bearer token [env: SCANCER_TOKEN]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -l token-file -d 'A file with the Bearer token, or TorchServe\'s key_file.json' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -l timeout -d 'Seconds to wait for each answer' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -l color -d 'When to colour the output: auto colours terminals unless NO_COLOR is set' -r -f -a "auto\t''
always\t''
never\t''"
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -l synchronous -d 'Let the server answer only once the workers have started'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -l wait -d 'Wait until the wanted number of workers is READY'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -l json -d 'Print the server\'s JSON instead of a table (list: every page merged)'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -s h -l help -d 'Print help'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from register" -s V -l version -d 'Print version'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from scale" -l version -d 'The version to scale [default: the default version]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from scale" -l min-workers -d 'Fewest workers' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from scale" -l max-workers -d 'Most workers' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from scale" -l wait-timeout -d 'Seconds to wait with --wait' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from scale" -l url -d 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from scale" -l profile -d 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from scale" -s u -l user -d 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from scale" -l token -d 'Bearer token [env: SCANCER_TOKEN]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from scale" -l token-file -d 'A file with the Bearer token, or TorchServe\'s key_file.json' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from scale" -l timeout -d 'Seconds to wait for each answer' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from scale" -l color -d 'When to colour the output: auto colours terminals unless NO_COLOR is set' -r -f -a "auto\t''
always\t''
never\t''"
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from scale" -l synchronous -d 'Let the server answer only once the workers have changed'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from scale" -l wait -d 'Wait until the wanted number of workers is READY'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from scale" -l json -d 'Print the server\'s JSON instead of a table (list: every page merged)'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from scale" -s h -l help -d 'Print help'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from set-default" -l url -d 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from set-default" -l profile -d 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from set-default" -s u -l user -d 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from set-default" -l token -d 'Bearer token [env: SCANCER_TOKEN]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from set-default" -l token-file -d 'A file with the Bearer token, or TorchServe\'s key_file.json' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from set-default" -l timeout -d 'Seconds to wait for each answer' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from set-default" -l color -d 'When to colour the output: auto colours terminals unless NO_COLOR is set' -r -f -a "auto\t''
always\t''
never\t''"
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from set-default" -l json -d 'Print the server\'s JSON instead of a table (list: every page merged)'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from set-default" -s h -l help -d 'Print help'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from unregister" -l version -d 'The version to remove' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from unregister" -l url -d 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from unregister" -l profile -d 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from unregister" -s u -l user -d 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from unregister" -l token -d 'Bearer token [env: SCANCER_TOKEN]' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from unregister" -l token-file -d 'A file with the Bearer token, or TorchServe\'s key_file.json' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from unregister" -l timeout -d 'Seconds to wait for each answer' -r
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from unregister" -l color -d 'When to colour the output: auto colours terminals unless NO_COLOR is set' -r -f -a "auto\t''
always\t''
never\t''"
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from unregister" -l json -d 'Print the server\'s JSON instead of a table (list: every page merged)'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from unregister" -s h -l help -d 'Print help'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the registered models (following every page)'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "describe" -d 'Describe a model: its versions, workers and queue'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "register" -d 'Register an archive: an http(s) URL the server downloads, or a file in its model store'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "scale" -d 'Set a model\'s number of workers'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "set-default" -d 'Make a version the one that /predictions/{model} answers with'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "unregister" -d 'Unregister a model version (the default one unless --version)'
complete -c scancer -n "__fish_scancer_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l model-store -d 'TorchServe\'s model store: the folder archives are registered from. Turns on TorchServe\'s layout: inference, management and metrics APIs on their own ports' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l models -d 'Archives in the model store to register at start: `all`, FILE.mar or NAME=FILE.mar (TorchServe\'s load_models; ignored when a config snapshot is restored)' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l ts-config -d 'TorchServe\'s config.properties (also: TS_CONFIG_FILE). Without it, the newest config snapshot is restored, else ./config.properties is read' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l allowed-urls -d 'URLs the management API may register archives from: comma-separated regular expressions, each matching a whole URL (TorchServe\'s allowed_urls). Unlike TorchServe, none by default: only the model store' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l max-download-size -d 'Largest archive a registration downloads, in bytes' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l download-timeout -d 'Seconds a registration\'s download may take' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l workers -d 'Workers each model starts with: model instances running batches side by side, each on one thread (TorchServe\'s default_workers_per_model) [default: --threads, else one per physical core; one on CUDA]' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l host -d 'Address to listen on; anything but loopback should come with --auth-file or --token-file [default: 127.0.0.1]' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -s p -l port -d 'Port of the inference API, or of every API without --model-store (0: any free port, printed at start-up) [default: 8080]' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l management-port -d 'Port of the management API, with --model-store (0: any free port) [default: 8081]' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l metrics-port -d 'Port of the metrics API, with --model-store (0: any free port) [default: 8082]' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l grpc-port -d 'gRPC port: KServe V2\'s and TorchServe\'s gRPC inference services (0: any free port, printed at start-up) [default: 7070]' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l grpc-management-port -d 'gRPC management port, with --model-store: TorchServe\'s gRPC management API (0: any free port) [default: 7071]' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -s b -l batch-size -d 'Images per forward pass (serve: the most requests batched together). Every answer is the one this batch shape gives: a partial batch is padded, or runs at a smaller shape checked at load to answer bit for bit the same, so on one machine a result is identical whatever the image\'s neighbours, the load and the threads; another CPU\'s instruction set (AVX-512, AVX2, AVX) agrees within 1e-5, and so does another batch size' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l threads -d 'Model instances running side by side, each running whole forward passes on one thread (serve: workers per model) [default: one per physical core; one on CUDA]' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l device -d 'Where the model runs' -r -f -a "cpu\t''
cuda\t''
auto\t'CUDA when a GPU is visible, else CPU'"
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l max-image-pixels -d 'Refuse images with more pixels than this (decompression-bomb guard)' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l max-batch-delay -d 'Milliseconds to wait for more requests to fill a batch once one is queued (stops early when no other request is on its way)' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l job-queue-size -d 'Images that may wait for each model version; a request finding no room waits up to --queue-wait, then gets 503 [default: 100]' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l queue-wait -d 'Milliseconds a request may wait for room in a full queue before its 503 (0: TorchServe\'s immediate 503)' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l max-request-size -d 'Largest request body in bytes; larger ones are answered 413 (TorchServe\'s max_request_size) [default: 6553500]' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l client-timeout -d 'Seconds a client may take to send a request once started, or to read its answer (408 after)' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l head-timeout -d 'Seconds a client may take to send a request head once its first byte has come (408 after)' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l keep-alive-timeout -d 'Seconds an idle keep-alive connection stays open' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l max-connections -d 'Open connections at most; more are answered 503 and closed' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l max-body-memory -d 'Request body bytes held in memory at once, over all requests; further bodies wait for room' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l auth-file -d 'HTTP Basic credentials, one name:password per line (also: SCANCER_AUTH=name:password)' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l token-file -d 'Bearer tokens, one per line, or TorchServe\'s key_file.json (also: SCANCER_TOKEN)' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l open -d 'Endpoints that need no credentials when authentication is on [default: health; none with --model-store, where TorchServe\'s /ping needs the inference key]' -r -f -a "health\t'`/ping` and the KServe `/v2/health/*` probes'
metrics\t'`/metrics`'
none\t'nothing: every endpoint needs credentials'"
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l slides -d 'Serve the whole-slide images under DIR on the inference port: the slide API (/slides: Deep Zoom tiles, thumbnails, properties, uploads); its catalogue is kept in DIR/.scancer' -r -F
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l max-slide-upload -d 'Largest slide upload (PUT /slides/NAME) in bytes' -r
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l color -d 'When to colour the output: auto colours terminals unless NO_COLOR is set' -r -f -a "auto\t''
always\t''
never\t''"
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l ncs -d 'Neither write nor restore config snapshots (TorchServe\'s --no-config-snapshots)'
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l start -d 'Accepted for TorchServe\'s command lines (KServe\'s runtime passes it): serve always starts'
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l foreground -d 'Accepted for TorchServe\'s command lines: serve always runs in the foreground'
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l enable-model-api -d 'Allow registering and unregistering models through the management API (TorchServe\'s enable_model_api)'
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l disable-token-auth -l dt -d 'No TorchServe token authorization with --model-store (its key_file.json; TorchServe\'s disable_token_authorization)'
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l no-grpc -d 'No gRPC ports'
complete -c scancer -n "__fish_scancer_using_subcommand serve" -l no-optimize -d 'Run a TorchScript graph as saved, as TorchServe does, instead of frozen and optimised for inference (several times faster on CPU; results agree within a few 1e-6; .pt2 and ONNX models come optimised)'
complete -c scancer -n "__fish_scancer_using_subcommand serve" -s q -l quiet -d 'No access log on standard error'
complete -c scancer -n "__fish_scancer_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c scancer -n "__fish_scancer_using_subcommand serve" -s V -l version -d 'Print version'
complete -c scancer -n "__fish_scancer_using_subcommand help; and not __fish_seen_subcommand_from predict archive store serve help" -f -a "predict" -d 'Run a model on image files, directories of images, or standard input: locally, on whole slides (--tile), or with a remote inference API (--remote)'
complete -c scancer -n "__fish_scancer_using_subcommand help; and not __fish_seen_subcommand_from predict archive store serve help" -f -a "archive" -d 'Package a model and its handler configuration as a TorchServe .mar archive, or inspect one'
complete -c scancer -n "__fish_scancer_using_subcommand help; and not __fish_seen_subcommand_from predict archive store serve help" -f -a "store" -d 'Manage models on a TorchServe management API (Scancer\'s model store)'
complete -c scancer -n "__fish_scancer_using_subcommand help; and not __fish_seen_subcommand_from predict archive store serve help" -f -a "serve" -d 'Serve models: TorchServe\'s inference and management APIs, KServe V1 and V2, Prometheus metrics'
complete -c scancer -n "__fish_scancer_using_subcommand help; and not __fish_seen_subcommand_from predict archive store serve help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c scancer -n "__fish_scancer_using_subcommand help; and __fish_seen_subcommand_from archive" -f -a "inspect" -d 'Print an archive\'s manifest, files and handler configuration'
complete -c scancer -n "__fish_scancer_using_subcommand help; and __fish_seen_subcommand_from store" -f -a "list" -d 'List the registered models (following every page)'
complete -c scancer -n "__fish_scancer_using_subcommand help; and __fish_seen_subcommand_from store" -f -a "describe" -d 'Describe a model: its versions, workers and queue'
complete -c scancer -n "__fish_scancer_using_subcommand help; and __fish_seen_subcommand_from store" -f -a "register" -d 'Register an archive: an http(s) URL the server downloads, or a file in its model store'
complete -c scancer -n "__fish_scancer_using_subcommand help; and __fish_seen_subcommand_from store" -f -a "scale" -d 'Set a model\'s number of workers'
complete -c scancer -n "__fish_scancer_using_subcommand help; and __fish_seen_subcommand_from store" -f -a "set-default" -d 'Make a version the one that /predictions/{model} answers with'
complete -c scancer -n "__fish_scancer_using_subcommand help; and __fish_seen_subcommand_from store" -f -a "unregister" -d 'Unregister a model version (the default one unless --version)'
